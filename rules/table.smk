rule write_row:
    input:
        metrics=f"{CELL}/metrics.json",
        hf_data=f"{CELL}/hf_data",
    output:
        row=f"{CELL}/row.json",
    log:
        "results/logs/write_row/{env}/{algo}.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        cell=cell_params,
    script:
        "../scripts/write_row.py"


rule write_env_benchmarks:
    input:
        rows=env_rows,
        plot=env_plot,
    output:
        table="results/{env}/BENCHMARKS.md",
    log:
        "results/logs/write_env_benchmarks/{env}.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        table=table_params,
    script:
        "../scripts/write_benchmarks.py"


rule write_benchmarks:
    input:
        rows=all_rows,
        plots=all_plots,
    output:
        table="results/BENCHMARKS.md",
    log:
        "results/logs/write_benchmarks.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        table=table_params,
    script:
        "../scripts/write_benchmarks.py"
