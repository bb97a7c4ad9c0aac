from slm_bench.snakemake_io import job_context
from slm_bench.steps import update_checkout_docs

with job_context(snakemake):
    update_checkout_docs(
        snakemake.config,
        snakemake.input.table,
        list(snakemake.input.plots),
        snakemake.output.updated,
    )
