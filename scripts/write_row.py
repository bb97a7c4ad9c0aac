from slm_bench.snakemake_io import cell, job_context
from slm_bench.steps import write_row

with job_context(snakemake):
    write_row(
        cell(snakemake),
        snakemake.config,
        snakemake.input.metrics,
        snakemake.input.upload,
        snakemake.output.row,
    )
