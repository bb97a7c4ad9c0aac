from slm_bench.snakemake_io import run_step
from slm_bench.stats_files import write_table_stats

run_step(
    snakemake,
    write_table_stats,
    list(snakemake.input.stats),
    dict(snakemake.params.phases),
    snakemake.output.summary,
    snakemake.output.profile,
)
