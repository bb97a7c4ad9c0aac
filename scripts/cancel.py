from slm_bench.config import build_matrix
from slm_bench.snakemake_io import run_step
from slm_bench.steps.ondemand import cancel_remote

run_step(snakemake, cancel_remote, build_matrix(snakemake.config), snakemake.params.slurm)
