"""Remote runs through dstack's command line: submit, poll, fetch the log, re-attach, relaunch.

One cell = one dstack task running SLM-Lab's remote command, which uploads the run folder to the
dev dataset repo; the pipeline then pulls it from there. The runner talks to dstack only through
its CLI (``apply``, ``ps -a --json``, ``logs``, ``stop``, ``event``), so the contract is the
one a user sees, and a stand-in executable can play the server in tests.

Durability: the run name goes into the cell's journal (``RunRequest.journal_path``) *before*
``dstack apply``; a restarted pipeline finds it there and re-attaches instead of paying for a
second run. Stopping the pipeline (SIGINT/SIGTERM) never stops a remote run: only
:func:`cancel_recorded_runs` does.

Secrets: the task YAML lists env *names* (dstack reads the values from this process's
environment), and since the server echoes env values in ``ps --json``, only a summary of safe
fields (:class:`RunState`) is ever kept.

Modules: ``options`` (the schema's options, the pipeline's store and checkout), ``runs`` (``ps``
output -> RunState), ``cli`` (the CLI wrapper and the shared listing), ``task`` (run names, the
task: SLM-Lab's own or the embedded one, hardware per cell, overrides), ``diagnosis`` (no fleets,
no offers, no server: what to do), ``progress`` (state-change lines, heartbeats, what Ctrl-C
leaves running), ``journal``, ``cell_run`` (one cell's attempts and the steps they go through:
start, wait, finish, relaunch, fail), ``runner`` (the loop over a cell's attempts), ``stopping``
(a stop counts once the server reports the run finished), ``cancel``, ``cost`` (per-hour cost as
planned vs SLM-Lab's choice). This package's public API is what it imports here.
"""

from slm_bench.runners.dstack.cancel import cancel_cells, cancel_recorded_runs
from slm_bench.runners.dstack.cell_run import log_tail
from slm_bench.runners.dstack.cli import DstackCli, DstackCliError, SharedListing
from slm_bench.runners.dstack.cost import CellCost, cell_cost, render_costs
from slm_bench.runners.dstack.diagnosis import (
    Problem,
    apply_problem,
    configuration_problem,
    waiting_reason,
)
from slm_bench.runners.dstack.journal import Attempt, journal_run_names, read_journal
from slm_bench.runners.dstack.options import PIPELINE_KEYS, Sources, StoreTarget, validate_options
from slm_bench.runners.dstack.progress import CANCEL_COMMAND, left_running_line
from slm_bench.runners.dstack.runner import DstackRunner
from slm_bench.runners.dstack.runs import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    RunState,
    index_runs,
    parse_ps_output,
)
from slm_bench.runners.dstack.task import (
    RUN_NAME_RE,
    SLM_LAB_TASKS,
    TASK_FILE,
    TYPICAL_PRICE,
    TaskPlan,
    apply_overrides,
    base_run_name,
    cell_spec,
    choose_hardware,
    load_slm_lab_task,
    next_run_name,
    plan_task,
    slm_lab_task_path,
    submit_values,
)

__all__ = [
    "ACTIVE_STATUSES",
    "CANCEL_COMMAND",
    "FINISHED_STATUSES",
    "PIPELINE_KEYS",
    "RUN_NAME_RE",
    "SLM_LAB_TASKS",
    "TASK_FILE",
    "TYPICAL_PRICE",
    "Attempt",
    "CellCost",
    "DstackCli",
    "DstackCliError",
    "DstackRunner",
    "Problem",
    "RunState",
    "SharedListing",
    "Sources",
    "StoreTarget",
    "TaskPlan",
    "apply_overrides",
    "apply_problem",
    "base_run_name",
    "cancel_cells",
    "cancel_recorded_runs",
    "cell_cost",
    "cell_spec",
    "choose_hardware",
    "configuration_problem",
    "index_runs",
    "journal_run_names",
    "left_running_line",
    "load_slm_lab_task",
    "log_tail",
    "next_run_name",
    "parse_ps_output",
    "plan_task",
    "read_journal",
    "render_costs",
    "slm_lab_task_path",
    "submit_values",
    "validate_options",
    "waiting_reason",
]
