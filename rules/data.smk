# The store: upload the finished run (or verify a remote run's own upload), then pull back
# exactly that folder for the checks, the plot and the row.


rule upload_run:
    input:
        marker=f"{CELL}/run.json",
    output:
        upload=f"{CELL}/upload.json",
    log:
        "results/logs/upload_run/{env}/{algo}.log",
    shell:
        JOB
        + " upload_run {log:q}"
        + " wildcards.env={wildcards.env:q}"
        + " wildcards.algo={wildcards.algo:q}"
        + " input.marker={input.marker:q}"
        + " output.upload={output.upload:q}"


rule pull_run_folder:
    input:
        metrics=f"{CELL}/metrics.json",
        upload=f"{CELL}/upload.json",
    output:
        hf_data=directory(f"{CELL}/hf_data"),
    log:
        "results/logs/pull_run_folder/{env}/{algo}.log",
    params:
        cell=run_params,
    shell:
        cell_job("pull_run_folder")
        + " input.metrics={input.metrics:q}"
        + " input.upload={input.upload:q}"
        + " output.hf_data={output.hf_data:q}"
