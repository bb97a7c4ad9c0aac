"""The cell's run journal: every run name it submitted, durable before anything is paid for."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.errors import BenchError
from slm_bench.runners import RunRequest
from slm_bench.runners.dstack.runs import RunState, parse_time


@contextmanager
def journal_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive lock on a cell's journal (``journal.json.lock``), between processes."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_journal(path: Path) -> dict:
    """The cell's journal, or an empty one; a file that is not a journal is a BenchError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise BenchError(
            f"{path}: unreadable run journal ({error}); delete it to start over"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("attempts", []), list):
        raise BenchError(f"{path}: not a run journal (expected an object with 'attempts')")
    return data


def journal_run_names(journal: dict) -> list[str]:
    """Every run name a journal records, current attempts and earlier work alike."""
    attempts = list(journal.get("previous", [])) + list(journal.get("attempts", []))
    return [a["name"] for a in attempts if isinstance(a, dict) and a.get("name")]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def epoch(stamp: str | None) -> float:
    moment = parse_time(stamp)
    return moment.timestamp() if moment else 0.0


@dataclass
class Attempt:
    """One submitted run of a cell, as the journal keeps it."""

    name: str
    reason: str  # submit | relaunch
    state: str = "submitting"  # submitting -> submitted -> a dstack run status
    recorded_at: str = field(default_factory=now)
    applied_at: str | None = None  # when `dstack apply` returned
    run: dict = field(default_factory=dict)  # RunState.to_dict() of the last poll
    invocation: str | None = None  # the pipeline run (runner process) that submitted it

    @classmethod
    def from_dict(cls, data: dict) -> Attempt:
        return cls(
            name=data["name"],
            reason=data.get("reason", "submit"),
            state=data.get("state", "submitted"),
            recorded_at=data.get("recorded_at", now()),
            applied_at=data.get("applied_at"),
            run=data.get("run") or {},
            invocation=data.get("invocation"),
        )

    def summary(self) -> dict:
        """What RunResult.extra["attempts"] shows of this attempt."""
        ended = (
            self.run.get("submit_error")
            or self.run.get("problem")
            or (RunState.from_dict(self.run).reasons() if self.run.get("name") else "")
        )
        return {
            "name": self.name,
            "reason": self.reason,
            "status": self.run.get("status", self.state),
            "termination": ended,
            "cost": self.run.get("cost"),
            "gpu": self.run.get("gpu"),
            "wall_time_s": self.run.get("wall_time_s"),
        }


def relaunches(attempts: list[Attempt]) -> int:
    """Relaunches since the cell's last fresh submission."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.reason != "relaunch":
            break
        count += 1
    return count


def open_journal(request: RunRequest, runner: str) -> dict:
    """The cell's journal for ``request``'s work: another fingerprint's attempts (the spec
    changed) move to ``previous``, where cancel can still reach them but nothing re-attaches."""
    journal = read_journal(request.journal_path)
    if journal.get("fingerprint") != request.fingerprint and journal.get("attempts"):
        previous = list(journal.get("previous", [])) + list(journal["attempts"])
        journal = {"previous": previous}
    journal.update(
        runner=runner,
        cell=request.cell,
        fingerprint=request.fingerprint,
        spec_file=request.spec_file,
        spec_name=request.spec_name,
    )
    journal.setdefault("attempts", [])
    journal.setdefault("previous", [])
    return journal


def save_journal(path: Path, journal: dict, attempts: list[Attempt], dstack_bin: str) -> None:
    """Write the journal, keeping a ``cancelled`` mark the cancel target put there meanwhile."""
    with journal_lock(path):
        on_disk = read_journal(path).get("attempts", [])
        cancelled = {a.get("name") for a in on_disk if a.get("state") == "cancelled"}
        for attempt in attempts:
            if attempt.name in cancelled:
                attempt.state = "cancelled"
        journal["attempts"] = [asdict(a) for a in attempts]
        journal["dstack_bin"] = dstack_bin
        write_json(path, journal)
