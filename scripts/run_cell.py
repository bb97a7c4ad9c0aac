from slm_bench.snakemake_io import cell, run_step
from slm_bench.steps import run_cell

run_step(
    snakemake,
    run_cell,
    cell(snakemake),
    snakemake.config,
    snakemake.output.marker,
    snakemake.output.train_log,
    snakemake.threads,
)
