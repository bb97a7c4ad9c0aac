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
        only=one_env,
    script:
        "../scripts/write_benchmarks.py"


rule write_phase_benchmarks:
    input:
        rows=phase_rows,
        plots=phase_plots,
    output:
        table="results/phases/{phase}/BENCHMARKS.md",
    log:
        "results/logs/write_phase_benchmarks/{phase}.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        table=table_params,
        only=phase_envs,
    script:
        "../scripts/write_benchmarks.py"


rule write_benchmarks:
    input:
        rows=all_rows,
        plots=all_plots,
        base=base_benchmarks_input,
    output:
        table="results/BENCHMARKS.md",
    log:
        "results/logs/write_benchmarks.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        table=table_params,
        only=None,
    script:
        "../scripts/write_benchmarks.py"
