from slm_bench.snakemake_io import run_step
from slm_bench.steps import update_checkout_docs

run_step(
    snakemake,
    update_checkout_docs,
    snakemake.config,
    snakemake.input.table,
    list(snakemake.input.plots),
    snakemake.output.updated,
)
