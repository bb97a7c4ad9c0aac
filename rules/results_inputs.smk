# Input functions and params of the statistics, comparison and report rules (stats.smk,
# compare.smk, report.smk), kept apart from the rules as Snakemake's linter asks.
import os

REPORT = "results/report"


def all_stats(wildcards):
    return [
        f"{CELL}/stats.json".format(env=env, algo=algo) for env, algo in MATRIX.cells
    ]


def env_phases(wildcards):
    """Env id -> phase title, for the per-phase aggregates."""
    return {entry.env_id: entry.phase for entry in MATRIX.envs.values()}


def random_returns(wildcards):
    """The cell's random-policy return (a param: a new baseline file recomputes the stats)."""
    from slm_bench.formats.baseline import baseline_path, random_return

    cell = cell_of(wildcards)
    return random_return(cell.env_id, baseline_path(BENCH))


def compare_reference():
    """The reference: compare_reference, else the checkout's BENCHMARKS.md, else None."""
    if BENCH.compare_reference:
        return BENCH.compare_reference
    checkout = BENCH.checkout
    return f"{checkout.root}/{checkout.benchmarks}" if checkout else None


def compare_reference_input(wildcards):
    """A reference file is an input (editing it reruns the comparison); a folder is a param."""
    reference = compare_reference()
    if reference is None:
        raise WorkflowError(
            f"{CONFIG_SOURCE}: compare_reference: set it to a BENCHMARKS.md or a results folder "
            "to compare with (or configure a checkout)"
        )
    return [reference] if not os.path.isdir(reference) else []


def cell_spec_names(wildcards):
    return {cell.key: cell.spec_name for cell in MATRIX.cells.values()}


def env_entry(env):
    entry = MATRIX.envs[env]
    return {
        "env": entry.env,
        "env_id": entry.env_id,
        "phase": entry.phase,
        "target": entry.target,
    }


def report_envs(wildcards):
    return [env_entry(env) for env in MATRIX.envs]


def env_report_category(wildcards):
    return MATRIX.envs[wildcards.env].phase or "No phase"


def env_cell_files(wildcards):
    """What an env's page reads: every cell's run marker, metrics, stats and pulled folder."""
    return [
        f"results/{wildcards.env}/{algo}/{name}"
        for algo in MATRIX.envs[wildcards.env].algos
        for name in ("run.json", "metrics.json", "stats.json", "hf_data")
    ]


def overview_inputs(wildcards):
    """Every cell's row, stats and run marker; the comparison when there is a reference."""
    files = [
        f"results/{env}/{algo}/{name}"
        for env, algo in MATRIX.cells
        for name in ("row.json", "stats.json", "run.json", "metrics.json")
    ]
    return files + (["results/compare.json"] if compare_reference() else [])


def report_pages_inputs(wildcards):
    pages = [
        f"{REPORT}/overview.html",
        f"{REPORT}/BENCHMARKS.html",
        "results/stats/performance_profile.png",
    ]
    pages += [f"{REPORT}/envs/{env}.html" for env in MATRIX.envs]
    return pages + ([f"{REPORT}/compare.html"] if compare_reference() else [])
