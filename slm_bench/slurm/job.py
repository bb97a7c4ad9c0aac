"""A training or search job's own side, when it runs as a Slurm job on a node.

Before training, the job records itself in its cell (``slurm.json``: job id, node, attempt), so
``status`` and ``cancel`` find it and provenance names it. Slurm stops a job with SIGTERM (then
SIGKILL after its KillWait) for three reasons that need different answers; at the SIGTERM the
job asks the controller which one it is (``scontrol show job``: the job is COMPLETING then):

- its time limit (``Reason=TimeLimit``): the cell fails with "Slurm stopped job N at its time
  limit (...)";
- a requeue (``scontrol requeue``, a preemption, a node failure): ``Restarts`` is past this
  attempt's ``SLURM_RESTART_COUNT``. Nothing is recorded: Slurm starts the same job again
  (attempt k+1, on a clean work folder) and the workflow keeps waiting on its id;
- anything else (``scancel``, a Ctrl-C of the workflow): the cell fails with "Slurm job N was
  cancelled ..."; the next run retrains just that cell.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from slm_bench.atomic import write_json
from slm_bench.durations import now_iso
from slm_bench.errors import BenchError
from slm_bench.slurm.cluster import SlurmError, show_job

JOURNAL = "slurm.json"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class SlurmJob:
    job_id: str
    node: str | None
    restarts: int  # SLURM_RESTART_COUNT: 0 for the first attempt

    @property
    def attempt(self) -> int:
        return self.restarts + 1

    def as_record(self) -> dict:
        return {"job_id": self.job_id, "node": self.node, "attempt": self.attempt}


def current_job(environ: Mapping[str, str] | None = None) -> SlurmJob | None:
    """The Slurm job this process runs in, from the variables Slurm sets, or None."""
    if environ is None:
        environ = os.environ
    job_id = environ.get("SLURM_JOB_ID") or environ.get("SLURM_JOBID")
    if not job_id:
        return None
    try:
        restarts = int(environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        restarts = 0
    node = environ.get("SLURMD_NODENAME") or environ.get("SLURM_NODELIST")
    return SlurmJob(job_id, node, restarts)


def record_start(cell_dir: Path, job: SlurmJob, rule: str) -> Path:
    """``slurm.json`` in the cell: this job and every earlier attempt of it (not an output)."""
    path = Path(cell_dir) / JOURNAL
    attempts = []
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
        attempts = [a for a in previous.get("attempts", []) if isinstance(a, dict)]
    except (OSError, ValueError, AttributeError):
        pass
    attempts.append({**job.as_record(), "started": now_iso()})
    record = {"rule": rule, **job.as_record(), "attempts": attempts[-20:]}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, record)


def with_restarts(job: SlurmJob) -> SlurmJob:
    """The job with its restart count from the controller: the executor's job step does not
    pass ``SLURM_RESTART_COUNT`` on to the rule."""
    try:
        restarts = int(show_job(job.job_id, timeout_s=10).get("Restarts", job.restarts))
    except (SlurmError, ValueError):
        return job
    return SlurmJob(job.job_id, job.node, restarts)


def record_requeue(cell_dir: Path, line: str) -> None:
    """Keep the requeue's line with the attempt it ended (the next attempt rewrites the log)."""
    path = Path(cell_dir) / JOURNAL
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["attempts"][-1]["requeued"] = line
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return
    write_json(path, record)


def why_stopped(job: SlurmJob, fields: dict[str, str] | None) -> tuple[str, bool]:
    """(the one line, whether Slurm requeued the job) for a job Slurm is stopping."""
    if fields is None:
        return f"Slurm stopped job {job.job_id} (the controller did not say why)", False
    ran = fields.get("RunTime", "?")
    where = f" on {fields['NodeList']}" if fields.get("NodeList") not in (None, "(null)") else ""
    if fields.get("Reason") == "TimeLimit" or fields.get("JobState") == "TIMEOUT":
        return (
            f"Slurm stopped job {job.job_id} at its time limit (TimeLimit={fields.get('TimeLimit')}"
            f", ran {ran}{where}); raise time_limit (at most 6h) or lower the frame budget",
            False,
        )
    try:
        restarts = int(fields.get("Restarts", "0"))
    except ValueError:
        restarts = 0
    if restarts > job.restarts or fields.get("JobState") in ("REQUEUED", "PREEMPTED"):
        return (
            f"Slurm requeued job {job.job_id} after {ran}{where} (requeue, preemption or node "
            f"failure): attempt {restarts + 1} trains the cell again from the start",
            True,
        )
    return (
        f"Slurm job {job.job_id} was cancelled after {ran}{where} (scancel, or the workflow "
        "was interrupted); the next run retrains this cell",
        False,
    )


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def slurm_job(cell_dir: Path, rule: str, say: Callable[[str], None]) -> Iterator[SlurmJob | None]:
    """Run a stage as this Slurm job: record it, and turn Slurm's SIGTERM into its one line.

    Outside Slurm this does nothing. A time limit or a cancel ends as a ``BenchError`` (the
    caller's ``job_context`` records it and exits 1); a requeue exits quietly after one line.
    """
    job = current_job()
    if job is None:
        yield None
        return
    job = with_restarts(job)
    record_start(cell_dir, job, rule)
    say(f"[{Path(cell_dir).parent.name}/{Path(cell_dir).name}] Slurm job {job.job_id} attempt "
        f"{job.attempt} on {job.node}")  # fmt: skip
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        yield job
    except SystemExit as stop:
        if stop.code not in tuple(128 + sig for sig in STOP_SIGNALS):
            raise
        try:
            fields = show_job(job.job_id, timeout_s=10)
        except SlurmError:
            fields = None
        line, requeued = why_stopped(job, fields)
        if requeued:
            record_requeue(cell_dir, line)
            say(line)
            raise
        raise BenchError(line) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def watchdog_grace_s() -> float:
    """Extra time for the local time-limit watchdog inside a Slurm job: Slurm's own limit (the
    job's wall time) stops the run and says so; the watchdog is only a backstop."""
    return 300.0 if current_job() is not None else 0.0
