from slm_bench.config import build_matrix
from slm_bench.snakemake_io import run_step
from slm_bench.steps import write_audit

run_step(
    snakemake,
    write_audit,
    build_matrix(snakemake.config),
    snakemake.config,
    snakemake.output.audit,
)
