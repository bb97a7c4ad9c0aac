from slm_bench.snakemake_io import cell, run_step
from slm_bench.steps import extract_metrics

run_step(
    snakemake,
    extract_metrics,
    cell(snakemake),
    snakemake.input.train_log,
    snakemake.input.marker,
    snakemake.output.metrics,
)
