# Serves the aggregate results/BENCHMARKS.md and the per-env and per-phase documents.
from slm_bench.config import build_matrix
from slm_bench.snakemake_io import run_step
from slm_bench.steps import write_benchmarks_for

run_step(
    snakemake,
    write_benchmarks_for,
    build_matrix(snakemake.config),
    snakemake.config,
    list(snakemake.input.rows),
    snakemake.output.table,
    snakemake.params.only,
)
