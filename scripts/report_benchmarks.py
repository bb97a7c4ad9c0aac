from slm_bench.report import write_benchmarks_page
from slm_bench.snakemake_io import run_step

run_step(snakemake, write_benchmarks_page, snakemake.input.table, snakemake.output.page)
