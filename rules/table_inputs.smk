# Input and param functions of the table rules (rules/table.smk).
from slm_bench.trust.failures import failure_counts, failure_dir, record_missing_staged

TABLE_CHAIN_RULES = frozenset(
    {
        "validate_spec",
        "run_cell",
        "upload_run",
        "extract_metrics",
        "pull_run_folder",
        "write_row",
        "plot_env",
        "write_benchmarks",
        "write_env_benchmarks",
        "write_phase_benchmarks",
    }
)


def _table_of(wildcards):
    """(env, phase) of the table a job builds or installs: one env, one phase, or neither."""
    names = wildcards.keys()
    if (
        "prefix" in names
    ):  # install_table: results/, results/{env}/ or results/phases/{phase}/
        where = wildcards.prefix.removeprefix("results/").strip("/")
        if where.startswith("phases/"):
            return None, where.removeprefix("phases/")
        return where or None, None
    return (
        wildcards.env if "env" in names else None,
        wildcards.phase if "phase" in names else None,
    )


def table_envs(wildcards):
    """The envs a table shows: one env, one phase's, or all."""
    env, phase = _table_of(wildcards)
    if env:
        return [env]
    if phase:
        return MATRIX.phases()[phase]
    return list(MATRIX.envs)


def table_cells(wildcards):
    return [
        (env, algo) for env in table_envs(wildcards) for algo in MATRIX.envs[env].algos
    ]


def per_cell(pattern):
    """An input function: ``pattern`` (a rule's output) for every cell of the table."""

    def files(wildcards):
        return [
            pattern.format(env=env, algo=algo) for env, algo in table_cells(wildcards)
        ]

    return files


def table_plots(wildcards):
    return [plot_path(env) for env in table_envs(wildcards)]


def table_failures(wildcards):
    """Failures recorded in the table's cells, their envs' plots, and the table itself."""
    env, phase = _table_of(wildcards)
    envs = table_envs(wildcards)
    scope = failure_dir(env, phase=phase)
    table_rule = (
        "write_env_benchmarks"
        if env
        else "write_phase_benchmarks" if phase else "write_benchmarks"
    )
    record_missing_staged(
        scope, table_rule, scope / "BENCHMARKS.staged.md", scope / "BENCHMARKS.md"
    )
    dirs = [
        failure_dir(env_, algo) for env_ in envs for algo in MATRIX.envs[env_].algos
    ]
    dirs += [failure_dir(env_) for env_ in envs] + [scope]
    return failure_counts(dirs, TABLE_CHAIN_RULES)


def table_prefixes():
    """``results/``, ``results/{env}/`` or ``results/phases/{phase}/``: the tables install_table
    serves (and no other BENCHMARKS.md, e.g. the published one)."""
    envs, phases = _alternatives(MATRIX.envs), _alternatives(MATRIX.phases())
    return f"results/((?:{envs})/|phases/(?:{phases})/)?"
