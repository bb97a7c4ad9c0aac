from slm_bench.snakemake_io import job_context
from slm_bench.steps import write_publish_manifest

with job_context(snakemake) as log:
    write_publish_manifest(
        snakemake.config,
        snakemake.input.table,
        snakemake.params.hf_data,
        snakemake.output.manifest,
        log=log,
    )
