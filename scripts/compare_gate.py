from slm_bench.compare import check_comparison
from slm_bench.snakemake_io import run_step

run_step(
    snakemake,
    check_comparison,
    snakemake.input.json,
    bool(snakemake.params.gate),
    snakemake.output.checked,
)
