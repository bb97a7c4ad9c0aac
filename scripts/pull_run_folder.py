from slm_bench.snakemake_io import cell, job_context
from slm_bench.steps import pull_run_folder

with job_context(snakemake):
    pull_run_folder(
        cell(snakemake),
        snakemake.config,
        snakemake.input.metrics,
        snakemake.input.upload,
        snakemake.output.hf_data,
    )
