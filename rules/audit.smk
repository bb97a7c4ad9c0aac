rule validate_spec:
    output:
        spec=f"{CELL}/spec.json",
    log:
        "results/logs/validate_spec/{env}/{algo}.log",
    conda:
        "../envs/slm-bench.yaml"
    params:
        cell=cell_params,
        fingerprint=spec_fingerprint,
    script:
        "../scripts/validate_spec.py"
