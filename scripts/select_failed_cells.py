from slm_bench.search.step import select_failed_cells
from slm_bench.snakemake_io import run_step

run_step(
    snakemake,
    select_failed_cells,
    dict(zip(snakemake.params.cells, snakemake.input.rows, strict=True)),
    snakemake.output.cells,
)
