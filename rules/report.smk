# The HTML report: `snakemake --report results/report.html --report-after-run report_pages`.
# Pages are organised by Snakemake report categories: "Benchmarks" (overview, BENCHMARKS.md,
# comparison, statistics) and one category per phase with a subcategory per env.


rule report_overview:
    input:
        cells=overview_inputs,
        plots=all_plots,
        summary="results/stats/summary.json",
        profile="results/stats/performance_profile.png",
    output:
        page=report(
            f"{REPORT}/overview.html",
            caption="../report/overview.rst",
            category="Benchmarks",
            subcategory="Overview",
            labels={"page": "overview"},
        ),
    log:
        "results/logs/report_overview.log",
    params:
        envs=report_envs,
        cells=[f"results/{env}/{algo}" for env, algo in MATRIX.cells],
        plots={env: plot_path(env) for env in MATRIX.envs},
        compare="results/compare.json" if compare_reference() else None,
    shell:
        JOB
        + " report_overview {log:q}"
        + " params.envs={params.envs!r:q}"
        + " params.cells={params.cells!r:q}"
        + " params.plots={params.plots!r:q}"
        + " params.compare={params.compare!r:q}"
        + " input.summary={input.summary:q}"
        + " input.profile={input.profile:q}"
        + " output.page={output.page:q}"


rule report_benchmarks:
    input:
        table="results/BENCHMARKS.md",
        plots=all_plots,
    output:
        page=report(
            f"{REPORT}/BENCHMARKS.html",
            caption="../report/benchmarks.rst",
            category="Benchmarks",
            subcategory="BENCHMARKS.md",
            labels={"page": "BENCHMARKS.md"},
        ),
    log:
        "results/logs/report_benchmarks.log",
    shell:
        JOB
        + " report_benchmarks {log:q}"
        + " input.table={input.table:q}"
        + " output.page={output.page:q}"


rule report_env:
    input:
        cells=env_cell_files,
        plot=env_plot,
    output:
        page=report(
            f"{REPORT}/envs/{{env}}.html",
            caption="../report/env.rst",
            category=env_report_category,
            subcategory="{env}",
            labels={"env": "{env}", "page": "runs and statistics"},
        ),
    log:
        "results/logs/report_env/{env}.log",
    params:
        env=lambda wildcards: env_entry(wildcards.env),
        cells=lambda wildcards: [
            f"results/{wildcards.env}/{algo}"
            for algo in MATRIX.envs[wildcards.env].algos
        ],
    shell:
        JOB
        + " report_env {log:q}"
        + " wildcards.env={wildcards.env:q}"
        + " params.env={params.env!r:q}"
        + " params.cells={params.cells!r:q}"
        + " input.plot={input.plot:q}"
        + " output.page={output.page:q}"


rule report_compare:
    input:
        md="results/compare.md",
    output:
        page=report(
            f"{REPORT}/compare.html",
            caption="../report/compare.rst",
            category="Benchmarks",
            subcategory="Comparison",
            labels={"page": "comparison"},
        ),
    log:
        "results/logs/report_compare.log",
    shell:
        JOB
        + " report_compare {log:q}"
        + " input.md={input.md:q}"
        + " output.page={output.page:q}"


rule report_pages:
    input:
        report_pages_inputs,
