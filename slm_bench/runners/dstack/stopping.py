"""Stopping runs until the server says they ended.

``dstack stop`` only marks a run ``terminating``; the server ends it later. Under a retry policy
on no-capacity, dstack 0.22.5 can write a stopped run back to ``pending``: a run worker that
took the run before the stop applies its own transition (``submitted -> pending``, a retry)
over the ``terminating`` the stop wrote (``background/pipeline_tasks/runs``: the stop does not
take the worker's row lock). The run then retries for the rest of its window and starts, and
is billed, as soon as a fleet has room. So a stop counts only once the server reports a
finished status; a run seen active again after a stop is stopped again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slm_bench.runners.dstack.cli import DstackCli, DstackCliError
from slm_bench.runners.dstack.runs import FINISHED_STATUSES, RunState, index_runs

# How long a stopped run may take to reach a finished status (the server ends a stopped run
# that never started within seconds; a running one gets its job's graceful stop first).
STOP_WAIT_S = 180.0
FIRST_CHECK_S = 1.0
MAX_CHECK_S = 8.0


@dataclass
class StopOutcome:
    """What became of one run after stops were sent."""

    name: str
    run_id: str | None = None
    known: bool = True  # False: the server has no run of that name
    stops: int = 0
    came_back: list[str] = field(default_factory=list)  # statuses seen again after a stop
    status: str | None = None  # the last status the server reported
    error: str | None = None  # the last failed check, when the server could not be asked
    waited_s: float = 0.0

    @property
    def ended(self) -> bool:
        return not self.known or self.status in FINISHED_STATUSES

    def text(self, what: str) -> str:
        """How the stop went, e.g. ``the waiting run was stopped``; ``what`` names the run."""
        if not self.known:
            return f"{what} is not on the server"
        again = ""
        if self.came_back:
            again = (
                f"; it came back as {self.came_back[0]} after the stop and was stopped again"
                f" ({self.stops} stops)"
            )
        if self.ended:
            return (
                f"{what} was stopped{again}; it is {self.status} now"
                if again
                else (f"{what} was stopped")
            )
        seen = self.status or (f"unknown ({self.error})" if self.error else "not listed")
        return (
            f"{what} was stopped but is still {seen} on the server {self.waited_s:.0f}s"
            f" later{again}; stop it: dstack stop -y {self.name} (then check: dstack ps -a)"
        )


def _find(runs: list[RunState], outcome: StopOutcome) -> RunState | None:
    if outcome.run_id:
        for state in runs:
            if state.id == outcome.run_id:
                return state
    found = index_runs(runs).get(outcome.name)
    return found if found is not None and not found.deleted else None


def stop_until_ended(
    cli: DstackCli,
    runs: Callable[[float], list[RunState]],
    targets: dict[str, str | None],
    *,
    already_stopped: bool = False,
    wait_s: float | None = None,
    check_s: float = FIRST_CHECK_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] | None = None,
) -> list[StopOutcome]:
    """Stop each run (name -> its id, if known) and wait, at most ``wait_s`` (default
    :data:`STOP_WAIT_S`), until the server reports each finished; a run seen active again (not
    ``terminating``) is stopped again and ``say`` is told. ``runs(t)`` lists runs as of after
    ``time.time()`` ``t``. ``already_stopped``: the first stop was sent by the caller. A failed
    ``dstack stop`` raises :class:`DstackCliError`."""
    outcomes = [StopOutcome(name, run_id) for name, run_id in targets.items()]
    stopped_at = time.time()
    for outcome in outcomes:
        if already_stopped:
            outcome.stops = 1
        else:
            outcome.known = cli.stop(outcome.name)
            outcome.stops = 1 if outcome.known else 0
    wait_s = STOP_WAIT_S if wait_s is None else wait_s
    started = clock()
    delay = check_s
    while True:
        waiting = [o for o in outcomes if not o.ended]
        if not waiting or clock() - started > wait_s:
            for outcome in outcomes:
                outcome.waited_s = clock() - started
            return outcomes
        sleep(delay)
        delay = min(delay * 2, MAX_CHECK_S)
        try:
            listing = runs(stopped_at)
        except DstackCliError as error:
            for outcome in waiting:
                outcome.error = str(error)
            continue
        for outcome in waiting:
            state = _find(listing, outcome)
            outcome.status = state.status if state else None
            outcome.error = None
            if state is None or state.finished or state.status == "terminating":
                continue
            outcome.came_back.append(state.status)
            if say is not None:
                name, status = outcome.name, state.status
                say(f"dstack run {name} came back as {status} after it was stopped; stopping again")
            stopped_at = time.time()
            cli.stop(outcome.name)
            outcome.stops += 1
            delay = check_s
