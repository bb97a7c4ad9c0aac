from slm_bench.snakemake_io import cell, job_context
from slm_bench.steps import run_cell

with job_context(snakemake):
    run_cell(
        cell(snakemake),
        snakemake.config,
        snakemake.input.spec,
        snakemake.output.marker,
        snakemake.output.train_log,
        snakemake.threads,
    )
