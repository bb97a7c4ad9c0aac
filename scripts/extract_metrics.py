from slm_bench.snakemake_io import cell, job_context
from slm_bench.steps import extract_metrics

with job_context(snakemake):
    extract_metrics(
        cell(snakemake),
        snakemake.input.train_log,
        snakemake.input.marker,
        snakemake.output.metrics,
    )
