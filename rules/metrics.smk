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
    shell:
        cell_job("extract_metrics")
        + " input.marker={input.marker:q}"
        + " input.train_log={input.train_log:q}"
        + " output.metrics={output.metrics:q}"
