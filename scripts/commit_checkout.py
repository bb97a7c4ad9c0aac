from slm_bench.snakemake_io import run_step
from slm_bench.steps import commit_checkout

run_step(
    snakemake,
    commit_checkout,
    snakemake.config,
    snakemake.input.updated,
    list(snakemake.input.rows),
    snakemake.output.commit,
)
