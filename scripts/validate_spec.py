from slm_bench.snakemake_io import cell, run_step
from slm_bench.steps import validate_spec

run_step(
    snakemake,
    validate_spec,
    cell(snakemake),
    snakemake.config["max_frame_policy"],
    snakemake.output.spec,
)
