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
        **SLURM_STATIC,
        runtime=job_runtime,
        dstack_slots=dstack_slot,
        train_cores=train_cores,
        mem_mb=slurm_mem_mb("run_cell"),
        gres=slurm_gres,
    params:
        cell=run_params,
    shell:
        cell_job("run_cell")
        + " threads={threads}"
        + " input.spec={input.spec:q}"
        + " output.marker={output.marker:q}"
        + " output.train_log={output.train_log:q}"
