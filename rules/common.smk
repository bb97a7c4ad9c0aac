import os
import re
import sys

from snakemake.exceptions import WorkflowError

from slm_bench.atomic import require_writable
from slm_bench.config_model import RunnerKind
from slm_bench.config_source import config_source
from slm_bench.errors import BenchError
from slm_bench.formats.naming import plot_png_name
from slm_bench.jobs import job_environment
from slm_bench.matrix.config import (
    build_matrix,
    cell_fingerprint,
    check_unique_keys,
    read_config,
)
from slm_bench.matrix.identifiers import ALGO_KEY
from slm_bench.monitor.build_progress import attach as attach_build_progress
from slm_bench.script_records import accept_script_records
from slm_bench.slurm import cluster as slurm_cluster
from slm_bench.slurm import executor as slurm_executor
from slm_bench.slurm import resources as slurm_resources
from slm_bench.trust.audit import never_learned_rows

# Error lines name where the value came from: --config, which --configfile, else config.yaml;
# the typed config carries that naming into every job.
CONFIG_SOURCE = config_source(
    workflow.overwrite_configfiles, overrides=workflow.config_settings.config
)
try:
    for configfile in workflow.configfiles:  # config.yaml or the --configfile files
        check_unique_keys(configfile, config_source([configfile]))
    # The validated config (`config` checked in place), typed and frozen: rules and input
    # functions read it, not `config`.
    BENCH = read_config(config, CONFIG_SOURCE)
    MATRIX = build_matrix(BENCH)
except BenchError as error:
    raise WorkflowError(str(error)) from None

# Every rule's job is one command: its stage run by slm_bench/jobs.py in the Python that runs
# Snakemake, given the job's files, wildcards and params by name. Snakemake reruns a shell
# rule's jobs when its command text changes, so the text only names what a job gets: the Python,
# the entry and the config this plan was made with are in the environment (a Slurm node's
# Snakemake sets its own), and slm_bench/jobs.py decides what each stage does with them.
os.environ.update(job_environment(config, BENCH.source))
# Results built while each rule ran a script of its own need no job (slm_bench/script_records.py).
accept_script_records()
JOB = '"$SLM_BENCH_PYTHON" -c "$SLM_BENCH_JOB"'


def cell_job(rule):
    """A cell's job: its wildcards (where a failure is recorded) and its cell param."""
    return (
        f"{JOB} {rule} {{log:q}} wildcards.env={{wildcards.env:q}}"
        " wildcards.algo={wildcards.algo:q} params.cell={params.cell!r:q}"
    )


# Rows of a checkout's BENCHMARKS.md that cannot be planned are listed, not fatal; a table
# that looks like results but is not understood is a warning naming its line.
for skipped in MATRIX.skipped:
    kind = "warning" if skipped.is_table_warning else "row not planned"
    print(f"slm-bench: {kind}: {skipped.line()}", file=sys.stderr)


def _alternatives(names):
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    env=_alternatives(MATRIX.envs),
    algo=ALGO_KEY.pattern,
    phase=_alternatives(MATRIX.phases()),


CELL = "results/{env}/{algo}"


def cell_of(wildcards):
    return MATRIX.cell(wildcards.env, wildcards.algo)


def cell_params(wildcards):
    """The cell's row definition; a change re-plans the cell (params rerun trigger)."""
    return cell_of(wildcards).as_params()


def run_params(wildcards):
    """What the run depends on besides spec.json: spec name, sets, Settings (not label/target)."""
    return cell_of(wildcards).as_params(run_only=True)


def spec_fingerprint(wildcards):
    """Hash of the resolved spec: editing one spec of a shared file re-plans only its cells."""
    return cell_fingerprint(cell_of(wildcards), BENCH.max_frame_policy.value)


def all_fingerprints(wildcards):
    """Every cell's spec fingerprint and the skipped rows: the audit reruns when one changes."""
    fingerprints = {
        cell.key: cell_fingerprint(cell, BENCH.max_frame_policy.value)
        for cell in MATRIX.cells.values()
    }
    return {"cells": fingerprints, "skipped": [row.line() for row in MATRIX.skipped]}


def all_never_learned(wildcards):
    """Each cell's sessions that never learned as the audit reports them: it reruns when a
    cell's stats.json (of its current run) changes what it says."""
    return {
        f"{env_id}/{label}": what for env_id, label, what in never_learned_rows(MATRIX)
    }


# Light jobs never wait behind training. Snakemake selects no job at all while every core is
# taken, so a finished cell's upload, metrics, row and plot would queue until the next cell's
# training ends. The scheduler gets one slot more than --cores, which training never takes:
# its jobs claim at most the cores given, in total (resource train_cores).
def given_cores():
    """--cores, or None on a cluster (profiles/slurm), which takes no core budget here."""
    try:
        return workflow.cores
    except WorkflowError:
        return None


def on_slurm():
    """Whether jobs run through the Slurm executor (profiles/slurm), or are its job on a node."""
    plugin = workflow.executor_plugin
    return plugin is not None and plugin.name in ("slurm", "slurm-jobstep")


TRAIN_CORES = given_cores()
if isinstance(TRAIN_CORES, int):
    workflow.register_resource("_cores", TRAIN_CORES + 1)
    workflow.register_resource("train_cores", TRAIN_CORES)


# A line at each finished job: cells trained, jobs done, elapsed, ETA
# (slm_bench/monitor/build_progress.py).
if workflow.is_main_process:
    attach_build_progress(TRAIN_CORES if isinstance(TRAIN_CORES, int) else None)


def session_threads(wildcards):
    """Sessions train in parallel, up to max_session and the cores Snakemake was given; a
    Slurm job asks for one CPU per session (there, the cluster is the limit)."""
    sessions = cell_of(wildcards).settings.max_session
    return sessions if on_slurm() else min(sessions, TRAIN_CORES)


def train_cores(wildcards, threads):
    """A training job's share of the cores given (all trainings at once stay within them)."""
    return threads


# Constants, not functions of the job: Snakemake evaluates a resource function for every job.
# A run past the time limit fails its cell; Snakemake's runtime is in minutes (on Slurm, the
# job's wall time: at most 6 h, SLM-Lab's rule).
TIME_LIMIT_S = BENCH.time_limit_s
job_runtime = slurm_resources.runtime_minutes(TIME_LIMIT_S)
# Remote runs take one slot of the global dstack_slots resource (profiles/dstack caps it).
dstack_slot = 1 if BENCH.runner is RunnerKind.DSTACK else 0


# The Slurm route (profiles/slurm): what each training or search job asks sbatch for.
SLURM = BENCH.slurm
slurm_executor.patch_cancelled_state()  # an externally cancelled job must end the wait
SLURM_STATIC = slurm_resources.static_resources(SLURM)


def slurm_mem_mb(rule):
    """The cell's measured peak in rule's benchmarks/ TSV with a margin, else slurm.mem_mb."""

    def mem_mb(wildcards):
        if not on_slurm():
            return SLURM.mem_mb
        return slurm_resources.memory_mb(rule, wildcards.env, wildcards.algo, SLURM)

    return mem_mb


def slurm_gres(wildcards):
    """gpu:N for a GPU cell (the dstack route's choice per env, or slurm.env_hardware)."""
    cell = cell_of(wildcards)
    if not on_slurm():
        return ""
    return slurm_resources.gres(cell.env_id, slurm_resources.spec_body(cell), SLURM)


def plot_path(env):
    return f"results/plots/{plot_png_name(MATRIX.envs[env].env_id)}"


def env_hf_data(wildcards):
    return [
        f"results/{wildcards.env}/{algo}/hf_data"
        for algo in MATRIX.envs[wildcards.env].algos
    ]


def env_plot(wildcards):
    return plot_path(wildcards.env)


def all_rows(wildcards):
    return [f"{CELL}/row.json".format(env=env, algo=algo) for env, algo in MATRIX.cells]


def all_plots(wildcards):
    return [plot_path(env) for env in MATRIX.envs]


def phase_envs(wildcards):
    return MATRIX.phases()[wildcards.phase]


def one_env(wildcards):
    return [wildcards.env]


def base_benchmarks_input(wildcards):
    """The checkout's BENCHMARKS.md, which the aggregate updates (none without a checkout)."""
    checkout = BENCH.checkout
    return [f"{checkout.root}/{checkout.benchmarks}"] if checkout else []


def table_params(wildcards):
    """Everything the table renders besides its inputs (rows, plots, the checkout's file): the
    title, each env's Docs (a checkout's own line, or title, url and target), Settings line and
    phase, and where spec links point. A change to any of them re-renders the table."""
    envs = {
        env: [
            entry.env_id,
            entry.settings.line(),
            entry.target,
            entry.docs,
            entry.phase,
            entry.docs_line,
        ]
        for env, entry in MATRIX.envs.items()
    }
    return {"title": BENCH.title, "spec_root": str(BENCH.spec_dir), "envs": envs}


def row_params(wildcards):
    """What a row derives besides its cell and sources: its Status rule and baseline, and the
    store its data link points into (a store changed after the upload redoes the row, which
    then says how to upload there)."""
    location = BENCH.store_options
    keys = ("root", "dev_repo", "endpoint")
    return {
        "status_rule": BENCH.status_rule.value,
        "random_baseline": BENCH.random_baseline,
        "store": [
            BENCH.store.value,
            {key: getattr(location, key, None) for key in keys},
        ],
    }


def require_writable_results():
    """Before the first job (the Snakefile's onstart, never in a dry run): a read-only results/
    is one line, not Snakemake's traceback from removing a job's old log or output there.
    """
    try:
        require_writable("results", "every job writes its outputs and logs there")
    except BenchError as error:
        raise WorkflowError(str(error)) from None


def check_slurm_controller():
    """On the Slurm route (the Snakefile's onstart), a controller that does not answer is one
    line before any submission."""
    if on_slurm() and workflow.executor_plugin.name == "slurm":
        try:
            slurm_cluster.check_controller(SLURM.controller_timeout_s)
        except slurm_cluster.SlurmError as error:
            raise WorkflowError(f"{error}; nothing was submitted") from None
