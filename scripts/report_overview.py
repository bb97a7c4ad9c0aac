from slm_bench.report import write_overview_page
from slm_bench.snakemake_io import run_step

run_step(
    snakemake,
    write_overview_page,
    list(snakemake.params.envs),
    list(snakemake.params.cells),
    dict(snakemake.params.plots),
    snakemake.input.summary,
    snakemake.input.profile,
    snakemake.params.compare,
    snakemake.output.page,
)
