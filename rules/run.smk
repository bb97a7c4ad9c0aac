# Training only: the finished run folder stays in the cell's work/ until upload_run (data.smk)
# has verified it in the store, so a failed upload never costs the training.


rule run_cell:
    input:
        spec=f"{CELL}/spec.json",
    output:
        marker=f"{CELL}/run.json",
        train_log=f"{CELL}/train.log",
    log:
        "results/logs/run_cell/{env}/{algo}.log",
    benchmark:
        "results/benchmarks/run_cell/{env}/{algo}.tsv"
    threads: session_threads
    resources:
        runtime=time_limit_minutes,
        dstack_slots=dstack_slot,
        train_cores=train_cores,
    params:
        cell=run_params,
    script:
        "../scripts/run_cell.py"
