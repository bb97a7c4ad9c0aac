from slm_bench.snakemake_io import run_step
from slm_bench.steps import publish_results

run_step(
    snakemake,
    publish_results,
    snakemake.config,
    snakemake.input.table,
    snakemake.output.report,
    snakemake.output.table,
)
