from slm_bench.snakemake_io import cell, run_step
from slm_bench.steps import write_row

run_step(
    snakemake,
    write_row,
    cell(snakemake),
    snakemake.config,
    snakemake.input.metrics,
    snakemake.output.row,
)
