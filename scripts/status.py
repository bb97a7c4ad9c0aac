from slm_bench.config import build_matrix
from slm_bench.snakemake_io import run_step
from slm_bench.status import print_status

run_step(
    snakemake,
    print_status,
    build_matrix(snakemake.config),
    snakemake.config,
    on_slurm=snakemake.params.slurm,
)
