from slm_bench.compare import write_comparison
from slm_bench.snakemake_io import run_step

run_step(
    snakemake,
    write_comparison,
    list(snakemake.input.stats),
    dict(snakemake.params.spec_names),
    snakemake.params.reference,
    float(snakemake.params.min_effect),
    snakemake.output.md,
    snakemake.output.json,
)
