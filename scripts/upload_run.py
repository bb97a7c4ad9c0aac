from slm_bench.snakemake_io import job_context
from slm_bench.steps import upload_run

with job_context(snakemake) as log:
    upload_run(snakemake.config, snakemake.input.marker, snakemake.output.upload, log=log)
