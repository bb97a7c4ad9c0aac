# Opt-in targets for a config with a checkout: never part of `all`.


rule update_checkout_docs:
    input:
        table="results/BENCHMARKS.md",
        plots=all_plots,
    output:
        updated="results/checkout/docs_updated.json",
    log:
        "results/logs/update_checkout_docs.log",
    shell:
        JOB
        + " update_checkout_docs {log:q}"
        + " input.table={input.table:q}"
        + " input.plots={input.plots!r:q}"
        + " output.updated={output.updated:q}"


rule commit_checkout:
    input:
        updated="results/checkout/docs_updated.json",
        rows=all_rows,
    output:
        commit="results/checkout/commit.json",
    log:
        "results/logs/commit_checkout.log",
    shell:
        JOB
        + " commit_checkout {log:q}"
        + " input.updated={input.updated:q}"
        + " input.rows={input.rows!r:q}"
        + " output.commit={output.commit:q}"
