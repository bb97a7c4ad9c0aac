from slm_bench.config import build_matrix
from slm_bench.runners.dstack import cancel_cells
from slm_bench.snakemake_io import run_step

run_step(snakemake, cancel_cells, build_matrix(snakemake.config).cells)
