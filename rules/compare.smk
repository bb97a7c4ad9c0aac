# Comparison with a reference table (the checkout's BENCHMARKS.md, or `compare_reference`: an
# earlier BENCHMARKS.md or results folder): `snakemake compare`. With `compare_gate: true` the
# target exits non-zero when a cell regressed (for CI). Never part of `all`.
rule compare_tables:
    input:
        stats=all_stats,
        reference=compare_reference_input,
    output:
        md="results/compare.md",
        json="results/compare.json",
    log:
        "results/logs/compare_tables.log",
    params:
        reference=compare_reference(),
        min_effect=BENCH.compare_min_effect,
        spec_names=cell_spec_names,
    shell:
        JOB
        + " compare_tables {log:q}"
        + " input.stats={input.stats!r:q}"
        + " params.spec_names={params.spec_names!r:q}"
        + " params.reference={params.reference!r:q}"
        + " params.min_effect={params.min_effect!r:q}"
        + " output.md={output.md:q}"
        + " output.json={output.json:q}"


rule compare:
    input:
        json="results/compare.json",
    output:
        checked=temp("results/compare.checked"),
    log:
        "results/logs/compare.log",
    params:
        gate=BENCH.compare_gate,
    shell:
        JOB
        + " compare {log:q}"
        + " input.json={input.json:q}"
        + " params.gate={params.gate!r:q}"
        + " output.checked={output.checked:q}"
