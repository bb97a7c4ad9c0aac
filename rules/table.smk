# Rows and tables. A table is never lost: each table rule writes BENCHMARKS.staged.md beside
# the table and install_table moves it into place by a hard link and a rename, so a failing
# table job leaves the previous BENCHMARKS.md as it was (Snakemake deletes only the staged file).
# Each table reads every stage's output of its cells (it cross-checks rows against them), and
# its `failures` param counts the failures recorded in its cells (slm_bench/trust/failures.py): the
# run after a failure plans the table again and, through its inputs, the failed stage.
include: "table_inputs.smk"


rule write_row:
    input:
        metrics=f"{CELL}/metrics.json",
        upload=f"{CELL}/upload.json",
        hf_data=f"{CELL}/hf_data",
    output:
        row=f"{CELL}/row.json",
    log:
        "results/logs/write_row/{env}/{algo}.log",
    params:
        cell=cell_params,
        row=row_params,
    shell:
        cell_job("write_row")
        + " input.metrics={input.metrics:q}"
        + " input.upload={input.upload:q}"
        + " output.row={output.row:q}"


# How a table links what it shows: a change re-renders the tables (not the cells).
TABLE_LINKS = "relative to the table (data folders too)"


TABLE_INPUTS = dict(
    rows=per_cell(rules.write_row.output.row),
    metrics=per_cell(rules.extract_metrics.output.metrics),
    uploads=per_cell(rules.upload_run.output.upload),
    hf_data=per_cell(rules.pull_run_folder.output.hf_data),
    # not read by the table: listed so that a failure there is redone by the next run
    specs=per_cell(rules.validate_spec.output.spec),
    markers=per_cell(rules.run_cell.output.marker),
    plots=table_plots,
)


rule write_env_benchmarks:
    input:
        **TABLE_INPUTS,
    output:
        staged="results/{env}/BENCHMARKS.staged.md",
    log:
        "results/logs/write_env_benchmarks/{env}.log",
    params:
        table=table_params,
        only=one_env,
        failures=table_failures,
        links=TABLE_LINKS,
    shell:
        JOB
        + " write_env_benchmarks {log:q}"
        + " wildcards.env={wildcards.env:q}"
        + " input.rows={input.rows!r:q}"
        + " input.metrics={input.metrics!r:q}"
        + " input.uploads={input.uploads!r:q}"
        + " input.hf_data={input.hf_data!r:q}"
        + " input.plots={input.plots!r:q}"
        + " params.only={params.only!r:q}"
        + " output.staged={output.staged:q}"


rule write_phase_benchmarks:
    input:
        **TABLE_INPUTS,
    output:
        staged="results/phases/{phase}/BENCHMARKS.staged.md",
    log:
        "results/logs/write_phase_benchmarks/{phase}.log",
    params:
        table=table_params,
        only=phase_envs,
        failures=table_failures,
        links=TABLE_LINKS,
    shell:
        JOB
        + " write_phase_benchmarks {log:q}"
        + " wildcards.phase={wildcards.phase:q}"
        + " input.rows={input.rows!r:q}"
        + " input.metrics={input.metrics!r:q}"
        + " input.uploads={input.uploads!r:q}"
        + " input.hf_data={input.hf_data!r:q}"
        + " input.plots={input.plots!r:q}"
        + " params.only={params.only!r:q}"
        + " output.staged={output.staged:q}"


rule write_benchmarks:
    input:
        **TABLE_INPUTS,
        base=base_benchmarks_input,
    output:
        staged="results/BENCHMARKS.staged.md",
    log:
        "results/logs/write_benchmarks.log",
    params:
        table=table_params,
        only=None,
        failures=table_failures,
        links=TABLE_LINKS,
    shell:
        JOB
        + " write_benchmarks {log:q}"
        + " input.rows={input.rows!r:q}"
        + " input.metrics={input.metrics!r:q}"
        + " input.uploads={input.uploads!r:q}"
        + " input.hf_data={input.hf_data!r:q}"
        + " input.plots={input.plots!r:q}"
        + " params.only={params.only!r:q}"
        + " output.staged={output.staged:q}"


# A hard link needs no free space and the rename is atomic: the table is the previous one or
# the new one. Runs in the shell: the previous table is absent only for milliseconds. The
# link's name carries the shell's pid, so two builds (--nolock) never share it.
# The table's own sources are inputs too: a change there after a killed table job (which left
# no staged file) still plans the table again.
rule install_table:
    input:
        **TABLE_INPUTS,
        staged="{prefix}BENCHMARKS.staged.md",
    output:
        table="{prefix}BENCHMARKS.md",
    log:
        "results/logs/install_table/{prefix}install.log",
    wildcard_constraints:
        prefix=table_prefixes(),
    params:
        table=table_params,
        failures=table_failures,
    shell:
        "tmp={output.table:q}.$$.tmp "
        '&& ln -f {input.staged:q} "$tmp" 2> {log:q} '
        '&& mv -f "$tmp" {output.table:q} 2>> {log:q}'
