rule validate_spec:
    output:
        spec=f"{CELL}/spec.json",
    params:
        cell=cell_params,
        fingerprint=spec_fingerprint,
    log:
        "results/logs/validate_spec/{env}/{algo}.log",
    script:
        "../scripts/validate_spec.py"
