from slm_bench.report import write_compare_page
from slm_bench.snakemake_io import run_step

run_step(snakemake, write_compare_page, snakemake.input.md, snakemake.output.page)
