"""What the runner prints while a remote run is in flight: a line at each state change, a
heartbeat while it waits for capacity, and, when the pipeline is stopped, which runs go on.

Lines go to stderr (the console and the job's log), prefixed with the cell, so a user watching
ten cells can tell them apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from slm_bench.durations import parse_duration
from slm_bench.runners.dstack.cli import DstackCli, DstackCliError
from slm_bench.runners.dstack.diagnosis import waiting_for_capacity, waiting_reason
from slm_bench.runners.dstack.journal import Attempt
from slm_bench.runners.dstack.runs import RunState, index_runs
from slm_bench.terminal import write_line

CANCEL_COMMAND = "snakemake --workflow-profile profiles/dstack cancel"
# How long the Ctrl-C line may wait for the server to say whether an interrupted apply landed.
SUBMIT_CHECK_S = 30


def retry_window_s(task: dict) -> float | None:
    """How long dstack keeps a run waiting for capacity (the task's retry duration), if it
    retries on no-capacity at all."""
    retry = task.get("retry") or {}
    if "no-capacity" not in (retry.get("on_events") or []):
        return None
    try:
        return parse_duration(retry.get("duration", "1h"), "the task's retry.duration")
    except Exception:  # noqa: BLE001 - a window we cannot read is shown as unknown
        return None


class Progress:
    """Tracks one attempt's state and prints what changed."""

    def __init__(
        self,
        cell: str,
        heartbeat_s: float,
        window_s: float | None,
        say: Callable[[str], None] = write_line,
        clock: Callable[[], float] = time.time,
    ):
        self.cell = cell
        self.heartbeat_s = heartbeat_s
        self.window_s = window_s
        self.say = say
        self.clock = clock
        self.seen: tuple | None = None
        self.last_beat = clock()

    def update(self, name: str, state: RunState, since: float) -> None:
        """Print a line when the run's status or reason changed, and a heartbeat every
        ``heartbeat_s`` while it waits for capacity (``since``: when it was submitted)."""
        reason = waiting_reason(state)
        key = (state.status, reason)
        now = self.clock()
        if key != self.seen:
            self.seen = key
            self.last_beat = now
            detail = f" ({reason})" if reason else ""
            self.say(f"{self.cell}: dstack run {name}: {state.status}{detail}")
            return
        if state.finished or state.status in ("running", "terminating"):
            return
        if now - self.last_beat >= self.heartbeat_s:
            self.last_beat = now
            self.say(self.heartbeat(name, state, now - since))

    def heartbeat(self, name: str, state: RunState, waited_s: float) -> str:
        minutes = int(waited_s // 60)
        what = "waiting for capacity" if waiting_for_capacity(state) else f"{state.status}"
        window = f" of {int(self.window_s // 60)}" if self.window_s else ""
        reason = waiting_reason(state)
        return f"{self.cell}: {what}, {minutes}{window} min (dstack run {name}: {reason or '-'})"


def left_running_line(cell: str, name: str | None, status: str | None) -> str:
    """The one line printed per cell when the pipeline is stopped (Ctrl-C, SIGTERM)."""
    if not name or status in ("done", "failed", "terminated", "cancelled"):
        return f"{cell}: stopped; no dstack run of this cell is left running"
    return (
        f"{cell}: stopped waiting; dstack run {name} ({status or 'submitted'}) keeps running"
        f" and a rerun re-attaches to it; to stop it: {CANCEL_COMMAND} (or dstack stop -y {name})"
    )


def interrupted_line(cell: str, attempt: Attempt | None, cli: DstackCli) -> str:
    """The line for a cell stopped while it waited. An attempt stopped during ``dstack apply``
    (the apply is killed with it) is looked up on the server: a run it never created is
    "not submitted", never "keeps running"."""
    if attempt is None or attempt.state != "submitting":
        status = (attempt.run.get("status") or attempt.state) if attempt else None
        return left_running_line(cell, attempt.name if attempt else None, status)
    name = attempt.name
    try:
        runs = DstackCli(cli.dstack_bin, cli.secrets, SUBMIT_CHECK_S, cli.named).ps()
    except (DstackCliError, KeyboardInterrupt) as error:  # a second Ctrl-C skips the check
        why = str(error) or "interrupted again"
        return (
            f"{cell}: stopped while submitting dstack run {name}; whether it reached the server"
            f" is unknown ({why}); check: dstack ps -a, and stop it if listed: dstack stop -y"
            f" {name}; a rerun re-attaches to it or submits it"
        )
    state = index_runs(runs).get(name)
    if state is not None and not state.deleted:
        return left_running_line(cell, name, state.status)
    return (
        f"{cell}: stopped during dstack apply; dstack run {name} was not submitted (the server"
        " has no run of that name); nothing of this cell is left running; a rerun submits it"
    )
