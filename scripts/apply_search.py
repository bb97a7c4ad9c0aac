from slm_bench.search.step import apply_search
from slm_bench.snakemake_io import cell, run_step

run_step(
    snakemake,
    apply_search,
    cell(snakemake),
    snakemake.config,
    snakemake.input.best,
    snakemake.input.patch,
    snakemake.output.applied,
)
