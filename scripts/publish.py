from slm_bench.snakemake_io import job_context
from slm_bench.steps import publish_results

with job_context(snakemake) as log:
    publish_results(
        snakemake.config,
        snakemake.input.table,
        snakemake.params.hf_data,
        snakemake.output.report,
        snakemake.output.table,
        log=log,
    )
