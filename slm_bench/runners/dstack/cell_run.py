"""One cell's run on the dstack route: its attempts and the attempt followed now, and the steps
that move it, in the order a cell meets them.

:meth:`CellRun.start` submits (or re-attaches to the journal's live attempt), :meth:`CellRun.wait`
polls until the run is finished, then :meth:`CellRun.finish` fetches the log, or
:meth:`CellRun.relaunch` submits again after a spot interruption, or :meth:`CellRun.fail` says
why. Everything a step needs is on the object: the request, the task plan and file, the journal
with its attempts, and the attempt followed now (what Ctrl-C and an unreachable server name).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from slm_bench.errors import BenchError
from slm_bench.runners import RunRequest, RunResult
from slm_bench.runners.dstack.cli import ANSI_RE, DstackCli, DstackCliError, SharedListing
from slm_bench.runners.dstack.diagnosis import (
    Problem,
    apply_problem,
    configuration_problem,
    repo_hint,
    server_hint,
    server_problem,
)
from slm_bench.runners.dstack.journal import (
    Attempt,
    epoch,
    journal_run_names,
    now,
    relaunches,
    save_journal,
)
from slm_bench.runners.dstack.options import Sources, StoreTarget
from slm_bench.runners.dstack.progress import Progress, retry_window_s
from slm_bench.runners.dstack.runs import RunState, index_runs
from slm_bench.runners.dstack.stopping import StopOutcome, stop_until_ended
from slm_bench.runners.dstack.task import TaskPlan, bare_env_names, next_run_name

PS_PAGE_SIZE = 100
MISSING_POLLS_TOLERATED = 3
FIRST_POLL_S = 2.0  # polls right after a submission come sooner: a config problem shows in s
# Beyond dstack's own limits (retry window, max_duration), how long to keep polling a run.
WAIT_MARGIN_S = 3600
# An attempt in one of these states has nothing left to re-attach to.
OVER = ("failed", "terminated", "cancelled")


class Route(Protocol):
    """What a cell's run uses of its runner: the options, the CLI and listing, and the seams
    (sleep, clock, say) that the tests and the polling benchmark replace."""

    name: str
    opts: dict
    store: StoreTarget | None
    sources: Sources
    invocation: str
    cli: DstackCli
    listing: SharedListing
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    say: Callable[[str], None]


@dataclass
class CellRun:
    """One cell's pass through the dstack route (see the module's docstring)."""

    route: Route
    request: RunRequest
    plan: TaskPlan
    task_file: Path
    journal: dict
    attempts: list[Attempt]
    attempt: Attempt | None = None  # the attempt followed now

    @property
    def opts(self) -> dict:
        """The runner's validated options."""
        return self.route.opts

    @property
    def invocation(self) -> str:
        """This pipeline run (the runner's process), which the attempt counts tell apart."""
        return self.route.invocation

    # -- the steps, in order ----------------------------------------------------------------

    def start(self) -> bool:
        """Re-attach to the journal's latest attempt, or submit when it is over (or there is
        none: a first run, or a rerun after a failure or a cancel). True: just submitted."""
        latest = self.attempts[-1] if self.attempts else None
        if latest is None or latest.state in OVER:
            self.submit("submit")
            return True
        self.attempt = latest
        self.route.say(f"{self.request.cell}: re-attaching to dstack run {latest.name}")
        return False

    def submit(self, reason: str) -> Attempt:
        """Pick a free name, journal it, then ``dstack apply``."""
        self._submit_env()  # a missing token stops the cell before anything is journaled
        attempt = Attempt(name=self._free_name(reason), reason=reason, invocation=self.invocation)
        self.attempts.append(attempt)
        self.attempt = attempt
        self._save()  # the name is durable before anything is paid for
        self.apply()
        return attempt

    def apply(self) -> None:
        """``dstack apply`` the followed attempt's run; stop it at once if the cancel target
        marked it meanwhile, and fail the cell when dstack already says it cannot start."""
        attempt = self._followed()
        output = self._apply_output(attempt)
        attempt.state = "submitted"
        attempt.applied_at = now()
        self._save()
        self.route.say(f"{self.request.cell}: submitted dstack run {attempt.name}")
        if attempt.state == "cancelled":
            # The cancel target ran between journaling the name and this apply, so it could not
            # stop the run: stop it here rather than leave a paid run going.
            stop = self._stop().text("it")
            raise BenchError(
                f"{self.request.cell}: dstack run {attempt.name} was cancelled; {stop}"
            )
        problem = apply_problem(output)
        if problem is not None:
            self._cannot_start(problem)

    def wait(self, just_submitted: bool) -> RunState:
        """Poll until the followed attempt's run is finished, saying what happens; re-submit
        an apply that never landed; fail at once on a configuration problem."""
        attempt = self._followed()
        budget = self._wait_budget_s()
        deadline = self.route.clock() + budget
        window_s = retry_window_s(self.plan.config)
        progress = Progress(self.request.cell, self.opts["heartbeat_s"], window_s, self.route.say)
        missing = 0
        interval = self._first_poll_s()
        look_now = not just_submitted  # re-attaching: look right away
        while True:
            if not look_now:
                self.route.sleep(interval)
                interval = min(interval * 2, self.opts["poll_interval_s"])
            look_now = False
            runs = self._list_runs(deadline, not_before=self._listed_after(), max_age_s=interval)
            state = self._find(runs)
            if state is None:
                missing += 1
                self._not_listed(missing)
                continue
            missing = 0
            self._observe(state, progress)
            if state.finished:
                return state
            if self.route.clock() > deadline:
                raise BenchError(
                    f"dstack: run {attempt.name} still {state.status} after {budget / 3600:.1f}h;"
                    " it was not stopped"
                )

    def may_relaunch(self, state: RunState) -> bool:
        """An interrupted run (spot) is relaunched while the options allow more relaunches."""
        return state.interrupted and relaunches(self.attempts) < self.opts["max_relaunches"]

    def relaunch(self) -> None:
        name = self._followed().name
        self.route.say(f"{self.request.cell}: dstack run {name} was interrupted; relaunching")
        self.submit("relaunch")

    def finish(self, state: RunState) -> RunResult:
        """The done run's result: its log fetched, its data folder read from it."""
        from slm_bench.formats.logs import read_run_log

        attempt = self._followed()
        self._fetch_log(attempt.name)
        run_log = read_run_log(self.request.log_path)
        if not run_log.data_folder:
            raise BenchError(
                f"{self.request.log_path}: dstack run {attempt.name} is done but its log has no"
                " 'SLM-Lab: Running ... | output: data/FOLDER/...' line"
            )
        extra = self._extra(state)
        extra["uploaded_to"] = run_log.uploaded_to
        extra["inner_runner"] = self.route.sources.inner_runner(self.opts)  # for the provenance
        return RunResult(
            run_name=attempt.name,
            runner=self.route.name,
            data_folder=run_log.data_folder,
            folder_path=None,
            extra=extra,
        )

    def fail(self, state: RunState) -> NoReturn:
        """Fail the cell with the run's status, its reasons and its log's last lines."""
        name = self._followed().name
        log_path = Path(self.request.log_path)
        try:
            self.route.cli.logs(name, log_path)
            tail = log_tail(log_path)
            where = f"log {log_path}: {tail}" if tail else "the run wrote no log"
        except DstackCliError as error:
            where = f"log unavailable: {error}"
        if log_path.is_file() and log_path.stat().st_size == 0:
            log_path.unlink()  # never point at an empty log
        reasons = state.reasons()
        raise BenchError(
            f"dstack run {name} of cell {self.request.cell} {state.status}"
            f"{f' ({reasons})' if reasons else ''}; {self._counts()}; {where}"
        )

    # -- submitting -------------------------------------------------------------------------

    def _followed(self) -> Attempt:
        if self.attempt is None:
            raise RuntimeError("no attempt is followed yet: start() or submit() comes first")
        return self.attempt

    def _save(self) -> None:
        save_journal(
            self.request.journal_path, self.journal, self.attempts, self.opts["dstack_bin"]
        )

    def _submit_env(self) -> dict[str, str]:
        """Values for bare env names that are not in this environment but known elsewhere: the
        Hugging Face token from the env file or ``hf auth login``. They go to the ``dstack
        apply`` process's environment only (dstack reads bare names from there)."""
        from slm_bench.stores.secrets import TOKEN_VAR, hf_token

        plan = self.plan
        extra: dict[str, str] = {}
        bare = [n for n in bare_env_names(plan.config) if n not in plan.values]
        if TOKEN_VAR in bare and not os.environ.get(TOKEN_VAR):
            env_file = self.route.store.env_file if self.route.store else ".env"
            token = hf_token(required=False, env_file=env_file)
            if token:
                extra[TOKEN_VAR] = token
                self.route.cli.secrets.append(token)
        missing = [n for n in bare if n not in os.environ and n not in extra]
        if missing:
            raise BenchError(
                f"{self.route.sources.config.where('dstack', 'env')}: environment variable"
                f" {missing[0]} is not set"
                f" (the task {plan.source} passes it by name; dstack reads its value from this"
                " machine's environment)"
            )
        return extra

    def _free_name(self, reason: str) -> str:
        """A run name neither the server nor the journal knows: the task's own name first, the
        next free one after the interrupted attempt's on a relaunch."""
        base = self.plan.config["name"]
        # A fresh listing: a name another process took a moment ago must count as taken.
        on_server = self._list_runs(None, not_before=time.time())
        taken = {state.name for state in on_server}
        taken |= set(journal_run_names(self.journal)) | {a.name for a in self.attempts}
        if reason == "relaunch":
            return next_run_name(self.attempts[-1].name, base, taken)
        return base if base not in taken else next_run_name(base, base, taken)

    def _apply_output(self, attempt: Attempt) -> str:
        """``dstack apply``'s output; a failed apply is journaled and fails the cell with the
        fix for a repo or server problem."""
        extra_env = self._submit_env()
        try:
            return self.route.cli.apply(self.task_file, attempt.name, self.plan.values, extra_env)
        except DstackCliError as error:
            attempt.state = "failed"
            attempt.run = {"name": attempt.name, "status": "failed", "submit_error": str(error)}
            self._save()
            hint = repo_hint(str(error)) or (
                server_hint(str(error)) if server_problem(str(error)) else None
            )
            hint = f"; {hint}" if hint else ""
            raise BenchError(
                f"{self.request.cell}: submitting dstack run {attempt.name} failed: {error}{hint}"
            ) from None

    def _cannot_start(self, problem: Problem, finished: bool = False) -> NoReturn:
        """Stop a run that cannot start (it costs nothing while pending) and fail the cell with
        dstack's reason, its URL and the fix."""
        attempt = self._followed()
        stop: StopOutcome | None = None
        if not finished:
            with contextlib.suppress(DstackCliError):  # the line then says how to stop it
                stop = self._stop()
        attempt.state = "failed"
        attempt.run = {**attempt.run, "name": attempt.name, "status": "failed"}
        attempt.run["problem"] = f"{problem.kind}: {problem.message}"
        self._save()
        if finished:
            left = "the run ended"
        elif stop is not None:
            left = stop.text("the waiting run")
        else:
            left = f"stop it: dstack stop -y {attempt.name}"
        fix = problem.fix(self.plan.hardware, self.route.sources.checkout)
        raise BenchError(
            f"{self.request.cell}: dstack cannot start run {attempt.name}: {problem.kind}"
            f" ({problem.message}); {fix}; {left}; {self._counts()}"
        )

    def _stop(self) -> StopOutcome:
        """Stop the followed run until the server reports it ended (saying so if it comes
        back)."""
        attempt = self._followed()
        (outcome,) = stop_until_ended(
            self.route.cli,
            self.route.listing.runs,
            {attempt.name: attempt.run.get("id")},
            check_s=self._first_poll_s(),
            sleep=self.route.sleep,
            clock=self.route.clock,
            say=lambda line: self.route.say(f"{self.request.cell}: {line}"),
        )
        return outcome

    # -- waiting ----------------------------------------------------------------------------

    def _first_poll_s(self) -> float:
        return min(FIRST_POLL_S, self.opts["poll_interval_s"])

    def _wait_budget_s(self) -> float:
        """How long a run may stay unfinished before the runner stops waiting (dstack itself
        bounds pending by the retry window and running by max_duration)."""
        from slm_bench.durations import parse_duration

        config = self.plan.config
        duration = config.get("max_duration")
        running = parse_duration(duration, "max_duration") if duration not in (None, "off") else 0
        return running + (retry_window_s(config) or 0) + WAIT_MARGIN_S

    def _listed_after(self) -> float:
        """A listing from before the attempt's apply (or, for an apply that may not have
        landed, before its name was journaled) cannot tell whether the run exists."""
        attempt = self._followed()
        return epoch(attempt.applied_at or attempt.recorded_at)

    def _list_runs(
        self, deadline: float | None, not_before: float = 0.0, max_age_s: float | None = None
    ) -> list[RunState]:
        """The run listing. An unreachable server fails the cell after unreachable_timeout_s;
        other failures are retried with a doubling, capped delay."""
        delay = self._first_poll_s()
        started = self.route.clock()
        while True:
            try:
                return self.route.listing.runs(not_before, max_age_s=max_age_s)
            except DstackCliError as error:
                self._give_up_listing(error, started, delay, deadline)
                self.route.sleep(delay)
                delay = min(delay * 2, self.opts["poll_backoff_max_s"])

    def _give_up_listing(
        self, error: DstackCliError, started: float, delay: float, deadline: float | None
    ) -> None:
        """Fail the cell when the listing has failed for too long: an unreachable server past
        unreachable_timeout_s, another failure past the deadline (or the backoff cap)."""
        moment = self.route.clock()
        waited = moment - started
        if server_problem(str(error)):
            if waited + delay > self.opts["unreachable_timeout_s"]:
                attempt = self.attempt
                left = (
                    f"; dstack run {attempt.name}, if it started, keeps going and a"
                    " rerun re-attaches to it"
                    if attempt and attempt.state not in ("submitting", "failed")
                    else ""
                )
                raise BenchError(
                    f"{self.request.cell}: dstack server unreachable for {waited:.0f}s:"
                    f" {error}; {server_hint(str(error))}{left}"
                ) from None
        elif deadline is not None and moment > deadline:
            raise BenchError(
                f"dstack: gave up polling for cell {self.request.cell}: {error}"
            ) from None
        elif deadline is None and waited > self.opts["poll_backoff_max_s"]:
            raise BenchError(f"dstack: cannot list runs: {error}") from None

    def _find(self, runs: list[RunState]) -> RunState | None:
        """The followed run in a ``ps`` page, by id once known; a run beyond the page is looked
        up in its events (only its status and reason are known then)."""
        attempt = self._followed()
        run_id = attempt.run.get("id")
        for state in runs:
            if run_id and state.id == run_id:
                return state
        if not run_id:
            found = index_runs(runs).get(attempt.name)
            if found is not None:
                return found
        if len(runs) < PS_PAGE_SIZE:
            return None
        event = self.route.cli.last_event_status(attempt.name)
        if event is None:
            return None
        known = {**attempt.run, "name": attempt.name}
        known.update(status=event[0], termination_reason=event[1])
        return RunState.from_dict(known)

    def _not_listed(self, missing: int) -> None:
        """The run is not in the listing (``missing`` polls in a row): apply again when the
        runner was killed before ``dstack apply`` returned; else give up after a few polls."""
        attempt = self._followed()
        if attempt.state == "submitting":
            self.apply()
            return
        if missing >= MISSING_POLLS_TOLERATED:
            raise BenchError(
                f"dstack: run {attempt.name} of cell {self.request.cell} is not on the server"
                " (deleted?); remove its journal entry to submit again"
            )

    def _observe(self, state: RunState, progress: Progress) -> None:
        """Journal what changed, say it, and fail at once on a configuration problem."""
        attempt = self._followed()
        snapshot = state.to_dict()
        if snapshot != attempt.run or attempt.state != state.status:
            attempt.run = snapshot
            attempt.state = state.status
            self._save()
        progress.update(attempt.name, state, self._listed_after() or time.time())
        problem = configuration_problem(state)
        if problem is not None:
            self._cannot_start(problem, state.finished)

    # -- the end ----------------------------------------------------------------------------

    def _fetch_log(self, name: str) -> None:
        delay = self._first_poll_s()
        for attempt_number in range(5):
            try:
                self.route.cli.logs(name, Path(self.request.log_path))
                return
            except DstackCliError as error:
                if error.not_found or attempt_number == 4:
                    raise BenchError(
                        f"dstack: cannot fetch the log of run {name}: {error}"
                    ) from None
                self.route.sleep(delay)
                delay = min(delay * 2, self.opts["poll_backoff_max_s"])

    def _extra(self, state: RunState) -> dict:
        attempts = self.attempts
        return {
            "cost": round(sum(float(a.run.get("cost") or 0.0) for a in attempts), 4),
            "gpu": state.gpu,
            "instance": state.instance,
            "backend": state.backend,
            "spot": state.spot,
            "wall_time_s": state.wall_time_s,
            "attempts": [a.summary() for a in attempts],
        }

    def _counts(self) -> str:
        """``attempt 2 of this cell, 1 in this invocation``: earlier invocations' attempts
        (e.g. cancelled ones) are counted apart."""
        mine = sum(1 for a in self.attempts if a.invocation == self.invocation)
        return f"attempt {len(self.attempts)} of this cell, {mine} in this invocation"


def log_tail(path: Path, lines: int = 3, width: int = 160) -> str:
    """The last non-empty lines of a log, colour codes removed, joined with `` / ``."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 16384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in ANSI_RE.sub("", text).splitlines() if line.strip()]
    return " / ".join(line[:width] for line in kept[-lines:])
