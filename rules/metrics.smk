rule extract_metrics:
    input:
        marker=f"{CELL}/run.json",
        train_log=f"{CELL}/train.log",
    output:
        metrics=f"{CELL}/metrics.json",
    log:
        "results/logs/extract_metrics/{env}/{algo}.log",
    params:
        cell=cell_params,
    script:
        "../scripts/extract_metrics.py"
