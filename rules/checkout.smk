# Opt-in targets for a config with a checkout: never part of `all`.


rule update_checkout_docs:
    input:
        table="results/BENCHMARKS.md",
        plots=all_plots,
    output:
        updated="results/checkout/docs_updated.json",
    log:
        "results/logs/update_checkout_docs.log",
    script:
        "../scripts/update_checkout_docs.py"


rule commit_checkout:
    input:
        updated="results/checkout/docs_updated.json",
        rows=all_rows,
    output:
        commit="results/checkout/commit.json",
    log:
        "results/logs/commit_checkout.log",
    script:
        "../scripts/commit_checkout.py"
