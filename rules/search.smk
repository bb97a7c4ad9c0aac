# On demand, never part of `all`: hyperparameter search for a cell that misses its target, as
# SLM-Lab's workflow does it. search_cell runs the spec's `search:` block through the runner;
# apply_search writes the best values the spec does not already hold into the spec file (and
# commits it in a checkout), which makes that cell's train chain stale (an empty patch changes
# nothing); search_failed searches every cell whose row is not solved.
rule search_cell:
    input:
        spec=f"{CELL}/spec.json",
    output:
        trials=f"{CELL}/search/trials.csv",
        best=f"{CELL}/search/best.json",
        patch=f"{CELL}/search/spec.patch",
        search_log=f"{CELL}/search/search.log",
    log:
        "results/logs/search_cell/{env}/{algo}.log",
    benchmark:
        "results/benchmarks/search_cell/{env}/{algo}.tsv"
    threads: search_threads
    resources:
        **SLURM_STATIC,
        runtime=job_runtime,
        dstack_slots=dstack_slot,
        train_cores=train_cores,
        mem_mb=slurm_mem_mb("search_cell"),
        gres=slurm_gres,
    params:
        cell=run_params,
        # How the search picks (the best trials re-evaluated on fresh seeds) is part of its result.
        reevaluate_top=BENCH.search_reevaluate_top,
    shell:
        cell_job("search_cell")
        + " threads={threads}"
        + " output.trials={output.trials:q}"
        + " output.best={output.best:q}"
        + " output.patch={output.patch:q}"
        + " output.search_log={output.search_log:q}"


rule apply_search:
    input:
        best=f"{CELL}/search/best.json",
        patch=f"{CELL}/search/spec.patch",
    output:
        applied=f"{CELL}/search/applied.json",
    log:
        "results/logs/apply_search/{env}/{algo}.log",
    params:
        cell=run_params,
    shell:
        cell_job("apply_search")
        + " input.best={input.best:q}"
        + " input.patch={input.patch:q}"
        + " output.applied={output.applied:q}"


checkpoint select_failed_cells:
    input:
        rows=all_rows,
    output:
        cells="results/search/failed_cells.json",
    log:
        "results/logs/select_failed_cells.log",
    params:
        cells=all_cell_keys,
    shell:
        JOB
        + " select_failed_cells {log:q}"
        + " params.cells={params.cells!r:q}"
        + " input.rows={input.rows!r:q}"
        + " output.cells={output.cells:q}"


rule search_failed:
    default_target: False
    input:
        failed_cell_searches,
