rule pull_run_folder:
    input:
        metrics=f"{CELL}/metrics.json",
    output:
        hf_data=directory(f"{CELL}/hf_data"),
    log:
        "results/logs/pull_run_folder/{env}/{algo}.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        cell=run_params,
    script:
        "../scripts/pull_run_folder.py"
