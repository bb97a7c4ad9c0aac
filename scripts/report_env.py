from slm_bench.report import write_env_page
from slm_bench.snakemake_io import run_step

run_step(
    snakemake,
    write_env_page,
    dict(snakemake.params.env),
    list(snakemake.params.cells),
    snakemake.input.plot,
    snakemake.output.page,
)
