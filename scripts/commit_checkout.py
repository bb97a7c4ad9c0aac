from slm_bench.snakemake_io import job_context
from slm_bench.steps import commit_checkout

with job_context(snakemake):
    commit_checkout(
        snakemake.config,
        snakemake.input.updated,
        list(snakemake.input.rows),
        snakemake.output.commit,
    )
