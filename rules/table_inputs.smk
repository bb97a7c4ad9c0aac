# Input and param functions of the table rules (rules/table.smk).
from slm_bench.failures import failure_counts, failure_dir

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


def table_envs(wildcards):
    """The envs a table shows: one env, one phase's, or all."""
    names = wildcards.keys()
    if "env" in names:
        return [wildcards.env]
    if "phase" in names:
        return MATRIX.phases()[wildcards.phase]
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


def scope_failures(envs, scope):
    """Failures recorded in the envs' cells, their plots, and the table itself (``scope``)."""
    dirs = [failure_dir(env, algo) for env in envs for algo in MATRIX.envs[env].algos]
    dirs += [failure_dir(env) for env in envs] + [scope]
    return failure_counts(dirs, TABLE_CHAIN_RULES)


def table_failures(wildcards):
    names = wildcards.keys()
    scope = failure_dir(
        wildcards.env if "env" in names else None,
        phase=wildcards.phase if "phase" in names else None,
    )
    return scope_failures(table_envs(wildcards), scope)


def installed_failures(wildcards):
    """table_failures of the table that install_table's ``prefix`` names."""
    where = wildcards.prefix.removeprefix("results/").strip("/")
    if not where:
        return scope_failures(list(MATRIX.envs), failure_dir())
    if where.startswith("phases/"):
        phase = where.removeprefix("phases/")
        return scope_failures(MATRIX.phases()[phase], failure_dir(phase=phase))
    return scope_failures([where], failure_dir(where))


def table_prefixes():
    """``results/``, ``results/{env}/`` or ``results/phases/{phase}/``: the tables install_table
    serves (and no other BENCHMARKS.md, e.g. the published one)."""
    envs, phases = _alternatives(MATRIX.envs), _alternatives(MATRIX.phases())
    return f"results/((?:{envs})/|phases/(?:{phases})/)?"
