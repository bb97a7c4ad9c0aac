# Statistics: per cell (session MAs, IQM, 95% stratified-bootstrap CIs, normalised score) and for
# the whole table (aggregate IQM of normalised scores, performance profile). On demand:
# `snakemake stats`; also inputs of the comparison and the report.


rule cell_stats:
    input:
        hf_data=f"{CELL}/hf_data",
    output:
        stats=f"{CELL}/stats.json",
    log:
        "results/logs/cell_stats/{env}/{algo}.log",
    params:
        cell=cell_params,
        random_return=random_returns,
    shell:
        cell_job("cell_stats")
        + " params.random_return={params.random_return!r:q}"
        + " input.hf_data={input.hf_data:q}"
        + " output.stats={output.stats:q}"


rule table_stats:
    input:
        stats=all_stats,
    output:
        summary="results/stats/summary.json",
        profile=report(
            "results/stats/performance_profile.png",
            caption="../report/performance_profile.rst",
            category="Statistics",
            labels={"figure": "performance profile"},
        ),
    log:
        "results/logs/table_stats.log",
    params:
        phases=env_phases,
    shell:
        JOB
        + " table_stats {log:q}"
        + " input.stats={input.stats!r:q}"
        + " params.phases={params.phases!r:q}"
        + " output.summary={output.summary:q}"
        + " output.profile={output.profile:q}"


rule stats:
    input:
        "results/stats/summary.json",
