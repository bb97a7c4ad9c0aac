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

Modules: ``options`` (the schema's options), ``runs`` (``ps`` output -> RunState), ``cli`` (the
CLI wrapper and the shared listing), ``task`` (run names, the task YAML), ``journal``, ``runner``
(the state machine), ``cancel``. This package's public API is what it imports here.
"""

from slm_bench.runners.dstack.cancel import cancel_recorded_runs
from slm_bench.runners.dstack.cli import DstackCli, DstackCliError, SharedListing
from slm_bench.runners.dstack.journal import Attempt, journal_run_names, read_journal
from slm_bench.runners.dstack.options import StoreTarget, validate_options
from slm_bench.runners.dstack.runner import DstackRunner, log_tail
from slm_bench.runners.dstack.runs import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    RunState,
    index_runs,
    parse_ps_output,
)
from slm_bench.runners.dstack.task import (
    RUN_NAME_RE,
    base_run_name,
    env_names,
    next_run_name,
    submit_values,
    task_config,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "RUN_NAME_RE",
    "Attempt",
    "DstackCli",
    "DstackCliError",
    "DstackRunner",
    "RunState",
    "SharedListing",
    "StoreTarget",
    "base_run_name",
    "cancel_recorded_runs",
    "env_names",
    "index_runs",
    "journal_run_names",
    "log_tail",
    "next_run_name",
    "parse_ps_output",
    "read_journal",
    "submit_values",
    "task_config",
    "validate_options",
]
