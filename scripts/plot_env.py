from slm_bench.config import build_matrix
from slm_bench.snakemake_io import job_context
from slm_bench.steps import plot_env

with job_context(snakemake):
    plot_env(
        build_matrix(snakemake.config).envs[snakemake.wildcards.env],
        list(snakemake.input.hf_data),
        snakemake.output.plot,
    )
