"""Where the whole build stands: one line at each finished job.

``build: cells 2/3 trained | jobs 14/21 | elapsed 5m02s | ETA 3m10s``

The jobs cannot know the build's state; Snakemake's main process does, and says it in log
events (the ``LogEvent`` fields of snakemake-interface-logger-plugins): ``RUN_INFO`` (jobs
planned per rule), ``JOB_INFO`` (a job's id and rule, when it starts), ``JOB_FINISHED`` and
``PROGRESS`` (jobs done of total). ``BuildProgress`` keeps the count from those events;
``attach`` hooks it to Snakemake's logger in the main process with a plain logging handler.

The ETA is for the training still to do, at the rate of the cells trained so far in this build
(training dominates; the light jobs take seconds): none before the first cell is trained, none
once every cell is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slm_bench.runners.progress import human_duration
from slm_bench.terminal import write_line

TRAIN_RULE = "run_cell"


@dataclass
class BuildProgress:
    """The build's counts, fed Snakemake's log events."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)  # the clock's time when the build began
    cells_planned: int = 0
    cells_trained: int = 0
    trained_at: float | None = None  # when the last cell finished training
    train_cores: int | None = None  # the cores given (Snakemake counts one more: see planned)
    rules: dict[int, str] = field(default_factory=dict)  # job id -> rule, as jobs start
    plan_said: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock()

    def planned(self, stats: dict) -> str | None:
        """``RUN_INFO`` (jobs per rule, ``total`` among them): what the build will do first,
        said before it starts (a report or a table target may train cells on the way); once
        (a dry run sends the plan twice)."""
        if self.plan_said:
            return None
        self.plan_said = True
        self.cells_planned = int(stats.get(TRAIN_RULE, 0))
        total = int(stats.get("total", 0))
        if not self.cells_planned:
            return f"build: {total} job(s) planned, no cell to train"
        line = f"build: {total} job(s) planned, {self.cells_planned} cell(s) to train"
        if self.train_cores:
            line += (
                f" on {self.train_cores} core(s) (Snakemake's \"Provided cores: "
                f'{self.train_cores + 1}" counts one more, kept for the light jobs: upload, '
                "metrics, row and plot never wait behind training)"
            )
        return line

    def job_started(self, jobid: int, rule: str) -> None:
        self.rules[jobid] = rule

    def job_finished(self, jobid: int) -> None:
        if self.rules.pop(jobid, None) == TRAIN_RULE:
            self.cells_trained += 1
            self.trained_at = self.clock()

    def eta(self) -> float | None:
        """The training left at this build's time per cell so far, less the time the cell now
        training has had since the last one finished."""
        left = self.cells_planned - self.cells_trained
        if self.cells_trained <= 0 or left <= 0 or self.trained_at is None:
            return None
        per_cell = (self.trained_at - self.started) / self.cells_trained
        return max(left * per_cell - (self.clock() - self.trained_at), 0.0)

    def line(self, done: int, total: int) -> str:
        parts = []
        if self.cells_planned:
            parts.append(f"cells {self.cells_trained}/{self.cells_planned} trained")
        parts.append(f"jobs {done}/{total}")
        parts.append(f"elapsed {human_duration(self.clock() - self.started)}")
        if (eta := self.eta()) is not None:
            parts.append(f"ETA {human_duration(eta)}")
        return "build: " + " | ".join(parts)


class BuildProgressHandler(logging.Handler):
    """Feeds Snakemake's log events to a ``BuildProgress``; writes its line at each
    ``PROGRESS`` event (one per finished job)."""

    def __init__(self, progress: BuildProgress, say: Callable[[str], None] = write_line):
        super().__init__(level=logging.DEBUG)
        self.progress = progress
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        fields = vars(record)  # Snakemake's event fields are the record's extra attributes
        event = str(fields.get("event") or "")
        try:
            if event == "run_info":
                if plan := self.progress.planned(fields.get("stats") or {}):
                    self.say(plan)
            elif event == "job_info":
                self.progress.job_started(fields["jobid"], fields["rule_name"])
            elif event == "job_finished":
                self.progress.job_finished(fields["job_id"])
            elif event == "progress":
                self.say(self.progress.line(int(fields["done"]), int(fields["total"])))
        except (AttributeError, KeyError, TypeError, ValueError):  # an event of another shape
            return


def attach(train_cores: int | None, logger_name: str = "snakemake.logging") -> BuildProgressHandler:
    """Hook a build-progress line to Snakemake's logger (call once, in the main process)."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:  # the Snakefile parsed again in the same process
        if isinstance(handler, BuildProgressHandler):
            return handler
    handler = BuildProgressHandler(BuildProgress(train_cores=train_cores))
    logger.addHandler(handler)
    return handler
