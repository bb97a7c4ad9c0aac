from slm_bench.snakemake_io import run_step
from slm_bench.steps import write_publish_manifest

run_step(
    snakemake,
    write_publish_manifest,
    snakemake.config,
    snakemake.input.table,
    snakemake.output.manifest,
)
