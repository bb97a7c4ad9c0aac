from slm_bench.snakemake_io import cell, run_step
from slm_bench.stats_files import write_cell_stats

run_step(
    snakemake,
    write_cell_stats,
    cell(snakemake),
    snakemake.params.random_return,
    snakemake.input.hf_data,
    snakemake.output.stats,
)
