from slm_bench.snakemake_io import cell, run_step
from slm_bench.steps import pull_run_folder

run_step(
    snakemake,
    pull_run_folder,
    cell(snakemake),
    snakemake.config,
    snakemake.input.metrics,
    snakemake.output.hf_data,
)
