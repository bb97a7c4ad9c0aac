"""``runner: dstack``: one dstack task per cell, polled until it is done.

The runner holds what every cell shares (the options, the CLI, the shared listing) and, for a
cell, opens a :class:`~slm_bench.runners.dstack.cell_run.CellRun` and walks it: start (submit,
or re-attach) -> wait -> finish, or relaunch and wait again, or fail. Stopping the pipeline
(Ctrl-C, SIGTERM) says which run is left running."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.runners import RunRequest, RunResult
from slm_bench.runners.dstack.cell_run import CellRun
from slm_bench.runners.dstack.cli import DstackCli, SharedListing
from slm_bench.runners.dstack.journal import Attempt, now, open_journal
from slm_bench.runners.dstack.options import (
    PIPELINE_KEYS,
    Sources,
    store_target,
    validate_options,
)
from slm_bench.runners.dstack.progress import interrupted_line
from slm_bench.runners.dstack.task import TASK_FILE, TaskPlan, cell_spec
from slm_bench.runners.dstack.task import plan_task as build_plan
from slm_bench.runners.stop_signals import stop_on_signals
from slm_bench.terminal import write_line


class DstackRunner:
    """``runner: dstack``: one dstack task per cell, polled until it is done."""

    name = "dstack"

    def __init__(self, options: dict | None = None):
        options = dict(options or {})
        pipeline = {key: options.pop(key) for key in PIPELINE_KEYS if key in options}
        self.source: ConfigSource = pipeline.get("source", DEFAULT_SOURCE)
        self.opts = validate_options(options, self.source)
        self.store = store_target(pipeline.get("store"), self.source)
        self.sources = Sources.from_options(self.opts, pipeline)
        self.sources.inner_runner(self.opts)  # slm-lab without a checkout fails here
        # seams for the polling benchmark and the tests, typed as the Route protocol has them
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic
        self.say: Callable[[str], None] = write_line
        self.invocation = f"{os.getpid()}@{now()}"
        secrets = [os.environ.get(name, "") for name in self.opts["env"]]
        named = self.source.where("dstack", "dstack_bin")
        self.cli = DstackCli(self.opts["dstack_bin"], secrets=secrets, named=named)
        self.listing = SharedListing(self.cli, max_age_s=self.opts["poll_interval_s"])
        self._cell: CellRun | None = None  # the cell being run: what Ctrl-C reports

    def plan_task(self, request: RunRequest) -> TaskPlan:
        """The task ``request`` submits: SLM-Lab's own (with a checkout) or the embedded one,
        on the cell's hardware, with the options' overrides."""
        env_id, body = cell_spec(request, self.sources.spec_root)
        return build_plan(self.opts, request, self.store, self.sources, env_id, body)

    def submit(self, request: RunRequest) -> str:
        """Submit the cell's run (its name journaled first) without waiting; the run name. A
        later :meth:`run` re-attaches to it."""
        self._cell = self._open(request)
        return self._cell.submit("submit").name

    def run(self, request: RunRequest) -> RunResult:
        """Run the cell remotely. Stopping the pipeline (Ctrl-C, SIGTERM) prints which run is
        left running and how to stop it, then exits 130 without a traceback."""
        try:
            with stop_on_signals(_interrupt):
                return self._run(request)
        except KeyboardInterrupt:
            self.say(interrupted_line(request.cell, self._followed(), self.cli))
            raise SystemExit(130) from None

    def _run(self, request: RunRequest) -> RunResult:
        """One cell, attempt by attempt, until its run is done or cannot go on."""
        cell = self._cell = self._open(request)
        self.say(cell.plan.summary(request.cell or request.spec_name))
        just_submitted = cell.start()
        while True:
            state = cell.wait(just_submitted)
            if state.status == "done":
                return cell.finish(state)
            if not cell.may_relaunch(state):
                cell.fail(state)
            cell.relaunch()
            just_submitted = True

    def _open(self, request: RunRequest) -> CellRun:
        """The cell's run: its journal with the attempts so far, its task planned and written."""
        journal = open_journal(request, self.name)
        attempts = [Attempt.from_dict(a) for a in journal["attempts"]]
        plan = self.plan_task(request)
        task_file = Path(request.workdir) / TASK_FILE
        write_text(task_file, plan.text(request.cell or request.spec_name))
        return CellRun(self, request, plan, task_file, journal, attempts)

    def _followed(self) -> Attempt | None:
        return self._cell.attempt if self._cell else None


def _interrupt(_signum: int) -> None:
    """SIGTERM (Snakemake stopping its jobs) ends the wait as Ctrl-C does."""
    raise KeyboardInterrupt
