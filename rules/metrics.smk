rule extract_metrics:
    input:
        marker=f"{CELL}/run.json",
        train_log=f"{CELL}/train.log",
    output:
        metrics=f"{CELL}/metrics.json",
    params:
        cell=cell_params,
    log:
        "results/logs/extract_metrics/{env}/{algo}.log",
    script:
        "../scripts/extract_metrics.py"
