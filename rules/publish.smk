# Publishing is opt-in: `snakemake publish` (or its manifest, a dry run: `snakemake publish_manifest`).
# Never part of `all`; nothing is pushed to any git remote.


rule publish_manifest:
    input:
        table="results/BENCHMARKS.md",
    output:
        manifest="results/publish/manifest.txt",
    log:
        "results/logs/publish_manifest.log",
    params:
        hf_data="results/hf_data",
    shell:
        JOB
        + " publish_manifest {log:q}"
        + " input.table={input.table:q}"
        + " params.hf_data={params.hf_data!r:q}"
        + " output.manifest={output.manifest:q}"


rule publish:
    input:
        table="results/BENCHMARKS.md",
        manifest="results/publish/manifest.txt",
    output:
        report="results/publish/report.json",
        table="results/publish/BENCHMARKS.md",
    log:
        "results/logs/publish.log",
    params:
        hf_data="results/hf_data",
    shell:
        JOB
        + " publish {log:q}"
        + " input.table={input.table:q}"
        + " params.hf_data={params.hf_data!r:q}"
        + " output.report={output.report:q}"
        + " output.table={output.table:q}"
