rule validate_spec:
    output:
        spec=f"{CELL}/spec.json",
    log:
        "results/logs/validate_spec/{env}/{algo}.log",
    params:
        cell=run_params,
        fingerprint=spec_fingerprint,
    shell:
        cell_job("validate_spec") + " output.spec={output.spec:q}"


rule audit_specs:
    output:
        audit="results/audit.md",
    log:
        "results/logs/audit_specs.log",
    params:
        fingerprints=all_fingerprints,
        never_learned=all_never_learned,
    shell:
        f"{JOB} audit_specs {{log:q}} output.audit={{output.audit:q}}"
