from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.config import build_matrix
from slm_bench.snakemake_io import run_step
from slm_bench.steps import cancel_runs

run_step(snakemake, cancel_runs, build_matrix(snakemake.config))
write_text(Path(snakemake.output.done), "cancelled\n")
