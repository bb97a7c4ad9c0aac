# slm-bench: SLM-Lab benchmarks as a build graph.
# spec validated -> run marker + log -> metrics.json -> hf_data folder -> plot -> row -> BENCHMARKS.md
from snakemake.utils import min_version

min_version("9.19")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/audit.smk"
include: "rules/run.smk"
include: "rules/metrics.smk"
include: "rules/data.smk"
include: "rules/plot.smk"
include: "rules/table.smk"
include: "rules/checkout.smk"
include: "rules/publish.smk"
include: "rules/status.smk"
include: "rules/stats.smk"
include: "rules/search.smk"


rule all:
    default_target: True
    input:
        "results/BENCHMARKS.md",
