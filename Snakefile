# slm-bench: SLM-Lab benchmarks as a build graph.
# spec.json -> run.json + train.log -> metrics.json + upload.json -> hf_data/ -> row.json + plot.png
# -> BENCHMARKS.md (docs/architecture.md draws the graph)
from snakemake.utils import min_version

from slm_bench.runners.stop_signals import forward_stop_signals
from slm_bench.snakemake_io import CLUSTER_RULES

min_version("9.19")


# The demo matrix is the config only when none is given: Snakemake would deep-merge a
# --configfile into it, and its envs would leak into every other config's plan.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/results_inputs.smk"
include: "rules/search_inputs.smk"
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
include: "rules/compare.smk"
include: "rules/report.smk"
include: "rules/search.smk"


# Snakemake keeps one onstart per workflow, so every start hook is here. A read-only results/
# is one line before any job; a signal to Snakemake alone (kill PID, timeout, systemd, a batch
# system) stops the running jobs as Ctrl-C does: Snakemake itself only waits for them
# (slm_bench/runners/stop_signals.py).
onstart:
    require_writable_results()
    check_slurm_controller()
    forward_stop_signals()


rule all:
    default_target: True
    input:
        "results/BENCHMARKS.md",


# On a cluster (profiles/slurm) only training and search are cluster jobs: every other rule
# (spec checks, uploads, metrics, rows, tables, plots, status, cancel) is light and runs here.
workflow.localrules(
    *(rule.name for rule in workflow.rules if rule.name not in CLUSTER_RULES)
)
