from slm_bench.config import build_matrix
from slm_bench.snakemake_io import job_context
from slm_bench.steps import write_audit

with job_context(snakemake):
    write_audit(build_matrix(snakemake.config), snakemake.config, snakemake.output.audit)
