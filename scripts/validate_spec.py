from slm_bench.snakemake_io import cell, job_context
from slm_bench.steps import validate_spec

with job_context(snakemake) as log:
    validate_spec(
        cell(snakemake), snakemake.config["max_frame_policy"], snakemake.output.spec, log=log
    )
