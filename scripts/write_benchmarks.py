# Serves the aggregate results/BENCHMARKS.md and the per-env and per-phase documents: each is
# staged here, cross-checked, and installed by the install_table rule.
from slm_bench.config import build_matrix
from slm_bench.snakemake_io import job_context
from slm_bench.steps import cell_files, write_benchmarks

with job_context(snakemake):
    write_benchmarks(
        build_matrix(snakemake.config),
        snakemake.config,
        cell_files(
            snakemake.input.rows,
            snakemake.input.metrics,
            snakemake.input.uploads,
            snakemake.input.hf_data,
        ),
        list(snakemake.input.plots),
        snakemake.output.staged,
        snakemake.params.only,
    )
