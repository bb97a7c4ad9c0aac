from slm_bench.search.step import search_cell
from slm_bench.snakemake_io import cell, run_step

run_step(
    snakemake,
    search_cell,
    cell(snakemake),
    snakemake.config,
    snakemake.output.trials,
    snakemake.output.best,
    snakemake.output.patch,
    snakemake.output.search_log,
    snakemake.threads,
)
