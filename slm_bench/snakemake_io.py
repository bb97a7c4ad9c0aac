"""How every job runs its stage (``slm_bench/jobs.py``, the command of each rule).

A job runs its stage inside ``job_context``: the rule's log is open, and any failure
ends as one line (``error: ...``) on stderr and in the log plus exit code 1. A ``BenchError``
is that line as is; an ``OSError`` (a full disk, a read-only store) names the file and the
system's reason; anything unexpected names its type, with the traceback only in the log. The
failure is recorded for ``status`` and the next plan (``slm_bench/trust/failures.py``), and cleared
when the same rule later succeeds.

"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol, TextIO

from slm_bench.errors import BenchError
from slm_bench.terminal import write_line
from slm_bench.trust.failures import clear_failure, failure_dir, record_failure


class Job(Protocol):
    """What a stage's context reads of its job (``slm_bench.jobs.Job``)."""

    rule: str
    log: list[str]
    wildcards: dict[str, str]

    @property
    def output(self) -> Mapping[str, str | Path]: ...


Say = Callable[[str], None]


def job_failure_dir(job: Job) -> Path:
    """Where the job's failure is recorded: its cell, env, phase, or the results folder."""
    wildcards = job.wildcards
    return failure_dir(wildcards.get("env"), wildcards.get("algo"), wildcards.get("phase"))


def error_line(error: BaseException, outputs: list[str], log_path: Path) -> str:
    """The one line a user sees for ``error``."""
    if isinstance(error, BenchError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = error.filename or ", ".join(outputs) or "(no output)"
        return str(BenchError(f"{where}: {error.strerror}"))
    return str(BenchError(f"unexpected {type(error).__name__}: {error} (traceback in {log_path})"))


def _open_log(path: Path) -> TextIO | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by job_context
    except OSError:
        return None  # e.g. a full disk: the error line still reaches stderr


# Training and search, the jobs a cluster profile sends away (profiles/slurm). On a Slurm node
# they record their job in the cell and turn Slurm's stop into their line.
CLUSTER_RULES = ("run_cell", "search_cell")


@contextmanager
def job_context(job: Job) -> Iterator[Say]:
    """Run a job's stage: yields ``say`` (a line to the log and stderr); one line on failure.
    A training or search job is also a Slurm job's own side when it runs under Slurm."""
    with _stage_context(job) as say:
        if job.rule not in CLUSTER_RULES:
            yield say
            return
        from slm_bench.slurm.job import slurm_job

        with slurm_job(job_failure_dir(job), job.rule, say):
            yield say


@contextmanager
def _stage_context(job: Job) -> Iterator[Say]:
    log_path = Path(job.log[0])
    rule = job.rule
    record_dir = job_failure_dir(job)
    log = _open_log(log_path)

    def say(message: str) -> None:
        if log is not None:
            with suppress(OSError):
                print(message, file=log, flush=True)
        write_line(message)

    try:
        yield say
    except Exception as error:  # noqa: BLE001 - every failure ends as one line
        if log is not None and not isinstance(error, BenchError):
            with suppress(OSError):
                log.write(traceback.format_exc())
        message = error_line(error, [str(path) for path in job.output.values()], log_path)
        try:
            record_failure(record_dir, rule, message)
        except OSError as cause:  # e.g. a full disk: say so, and how to redo the job
            message += (
                f" (failure not recorded in {record_dir}: {cause.strerror}; once fixed, rerun "
                f"with --forcerun {rule})"
            )
        say(f"error: {message}")
        sys.exit(1)
    else:
        with suppress(OSError):
            clear_failure(record_dir, rule)
    finally:
        if log is not None:
            with suppress(OSError):
                log.close()
