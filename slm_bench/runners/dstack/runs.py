"""Run state as ``dstack ps -a --json`` reports it, kept as safe summaries only.

The server echoes env values (HF_TOKEN included) in a run's spec, so nothing but the fields of
:class:`RunState` is ever kept from its output.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

ACTIVE_STATUSES = ("pending", "submitted", "provisioning", "running", "terminating")
FINISHED_STATUSES = ("terminated", "failed", "done")
# A spot preemption: dstack's JobTerminationReason.INTERRUPTED_BY_NO_CAPACITY, shown as the job
# message "interrupted" (dstack/_internal/server/services/jobs/__init__.py).
INTERRUPTED_REASON = "interrupted_by_no_capacity"
INTERRUPTED_MESSAGE = "interrupted"


def parse_ps_output(text: str) -> list[dict]:
    """The ``runs`` list of ``dstack ps --json`` output, whatever else the CLI printed around it
    (e.g. ``A new version of dstack is available``)."""
    decoder = json.JSONDecoder()
    pos = text.find("{")
    while pos >= 0:
        try:
            document, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(document, dict) and isinstance(document.get("runs"), list):
            return document["runs"]
        pos = text.find("{", end)
    raise ValueError("no JSON object with a 'runs' list in `dstack ps --json` output")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class RunState:
    """The safe facts of one run in ``ps --json`` (never its spec: that holds env values)."""

    name: str
    id: str | None = None
    status: str = ""
    status_message: str = ""
    termination_reason: str | None = None
    job_status: str | None = None
    job_message: str | None = None
    job_termination_reason: str | None = None
    job_termination_message: str | None = None
    exit_status: int | None = None
    cost: float = 0.0
    gpu: str | None = None
    instance: str | None = None
    backend: str | None = None
    price: float | None = None
    spot: bool | None = None
    submitted_at: str | None = None
    finished_at: str | None = None
    wall_time_s: float | None = None
    deleted: bool = False

    @classmethod
    def from_json(cls, run: dict) -> RunState:
        job = run.get("latest_job_submission") or {}
        provisioning = job.get("job_provisioning_data") or {}
        instance_type = provisioning.get("instance_type") or {}
        resources = instance_type.get("resources") or {}
        gpus = resources.get("gpus") or []
        gpu = None
        if gpus:
            gpu = gpus[0].get("name")
            gpu = f"{len(gpus)}x{gpu}" if len(gpus) > 1 else gpu
        submitted = parse_time(run.get("submitted_at"))
        finished = parse_time(job.get("finished_at"))
        end = finished or parse_time(run.get("last_processed_at"))
        wall = (end - submitted).total_seconds() if submitted and end else None
        return cls(
            name=(run.get("run_spec") or {}).get("run_name") or "",
            id=run.get("id"),
            status=run.get("status") or "",
            status_message=run.get("status_message") or "",
            termination_reason=run.get("termination_reason"),
            job_status=job.get("status"),
            job_message=job.get("status_message"),
            job_termination_reason=job.get("termination_reason"),
            job_termination_message=job.get("termination_reason_message"),
            exit_status=job.get("exit_status"),
            cost=float(run.get("cost") or 0.0),
            gpu=gpu,
            instance=instance_type.get("name"),
            backend=provisioning.get("backend"),
            price=provisioning.get("price"),
            spot=resources.get("spot"),
            submitted_at=run.get("submitted_at"),
            finished_at=job.get("finished_at"),
            wall_time_s=round(wall, 1) if wall is not None else None,
            deleted=bool(run.get("deleted")),
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def interrupted(self) -> bool:
        return self.status == "failed" and (
            self.job_termination_reason == INTERRUPTED_REASON
            or self.job_message == INTERRUPTED_MESSAGE
        )

    def reasons(self) -> str:
        """Why it ended, e.g. ``job_failed, no fleets, failed_to_start_due_to_no_capacity``."""
        parts = [self.termination_reason, self.job_message, self.job_termination_reason]
        if self.exit_status not in (None, 0):
            parts.append(f"exit status {self.exit_status}")
        if self.job_termination_message:
            # Whole, on one line: dstack ends it with its troubleshooting URL.
            parts.append(" ".join(self.job_termination_message.split()))
        seen: list[str] = []
        for part in parts:
            if part and part != self.status and part not in seen:
                seen.append(part)
        return ", ".join(seen)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunState:
        """Back from :meth:`to_dict` (unknown keys ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def index_runs(states: Iterable[RunState]) -> dict[str, RunState]:
    """Name -> the run a name means now: the live (not deleted) one, else the newest."""
    by_name: dict[str, RunState] = {}
    for state in states:
        current = by_name.get(state.name)
        if (
            current is None
            or (current.deleted and not state.deleted)
            or (
                current.deleted == state.deleted
                and (state.submitted_at or "") > (current.submitted_at or "")
            )
        ):
            by_name[state.name] = state
    return by_name
