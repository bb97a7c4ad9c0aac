"""``runner: dstack``: submit, poll, fetch the log, re-attach, relaunch; and say at once when a
run cannot start (no fleet, no offers, no server) instead of waiting in silence."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from slm_bench.atomic import write_text
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
    open_journal,
    relaunches,
    save_journal,
)
from slm_bench.runners.dstack.options import (
    PIPELINE_KEYS,
    Sources,
    store_target,
    validate_options,
)
from slm_bench.runners.dstack.progress import Progress, interrupted_line, retry_window_s
from slm_bench.runners.dstack.runs import RunState, index_runs
from slm_bench.runners.dstack.stopping import StopOutcome, stop_until_ended
from slm_bench.runners.dstack.task import (
    TASK_FILE,
    TaskPlan,
    bare_env_names,
    cell_spec,
    next_run_name,
)
from slm_bench.runners.dstack.task import plan_task as build_plan
from slm_bench.stop_signals import stop_on_signals
from slm_bench.terminal import write_line

PS_PAGE_SIZE = 100
MISSING_POLLS_TOLERATED = 3
FIRST_POLL_S = 2.0  # polls right after a submission come sooner: a config problem shows in s
# Beyond dstack's own limits (retry window, max_duration), how long to keep polling a run.
WAIT_MARGIN_S = 3600


class DstackRunner:
    """``runner: dstack``: one dstack task per cell, polled until it is done."""

    name = "dstack"

    def __init__(self, options: dict | None = None):
        options = dict(options or {})
        pipeline = {key: options.pop(key) for key in PIPELINE_KEYS if key in options}
        self.opts = validate_options(options)
        self.store = store_target(pipeline.get("store"))
        self.sources = Sources.from_options(self.opts, pipeline)
        self.sources.inner_runner(self.opts)  # slm-lab without a checkout fails here
        self.sleep = time.sleep  # seams for the polling benchmark and the tests
        self.clock = time.monotonic
        self.say = write_line
        self.invocation = f"{os.getpid()}@{now()}"
        secrets = [os.environ.get(name, "") for name in self.opts["env"]]
        self.cli = DstackCli(self.opts["dstack_bin"], secrets=secrets)
        self.listing = SharedListing(self.cli, max_age_s=self.opts["poll_interval_s"])
        self._current: Attempt | None = None

    # -- public -----------------------------------------------------------------------------

    def plan_task(self, request: RunRequest) -> TaskPlan:
        """The task ``request`` submits: SLM-Lab's own (with a checkout) or the embedded one,
        on the cell's hardware, with the options' overrides."""
        env_id, body = cell_spec(request, self.sources.spec_root)
        return build_plan(self.opts, request, self.store, self.sources, env_id, body)

    def submit(self, request: RunRequest) -> str:
        """Submit the cell's run (its name journaled first) without waiting; the run name. A
        later :meth:`run` re-attaches to it."""
        journal = open_journal(request, self.name)
        attempts = [Attempt.from_dict(a) for a in journal["attempts"]]
        plan = self.plan_task(request)
        task_file = self._write_task(request, plan)
        return self._submit(request, journal, attempts, task_file, plan, "submit").name

    def run(self, request: RunRequest) -> RunResult:
        """Run the cell remotely. Stopping the pipeline (Ctrl-C, SIGTERM) prints which run is
        left running and how to stop it, then exits 130 without a traceback."""
        try:
            with stop_on_signals(_interrupt):
                return self._run(request)
        except KeyboardInterrupt:
            self.say(interrupted_line(request.cell, self._current, self.cli))
            raise SystemExit(130) from None

    # -- the state machine ------------------------------------------------------------------

    def _run(self, request: RunRequest) -> RunResult:
        journal = open_journal(request, self.name)
        attempts = [Attempt.from_dict(a) for a in journal["attempts"]]
        plan = self.plan_task(request)
        task_file = self._write_task(request, plan)
        self.say(plan.summary(request.cell or request.spec_name))

        current = attempts[-1] if attempts else None
        just_submitted = False
        if current is None or current.state in ("failed", "terminated", "cancelled"):
            # Nothing to re-attach to: a first run, or a rerun after a failure or a cancel.
            current = self._submit(request, journal, attempts, task_file, plan, "submit")
            just_submitted = True
        else:
            self._current = current
            self.say(f"{request.cell}: re-attaching to dstack run {current.name}")
        while True:
            state = self._wait(request, journal, attempts, current, task_file, plan, just_submitted)
            if state.status == "done":
                return self._finish(request, attempts, current, state)
            if state.interrupted and relaunches(attempts) < self.opts["max_relaunches"]:
                self.say(f"{request.cell}: dstack run {current.name} was interrupted; relaunching")
                current = self._submit(request, journal, attempts, task_file, plan, "relaunch")
                just_submitted = True
                continue
            self._fail(request, attempts, current, state)

    def _write_task(self, request: RunRequest, plan: TaskPlan) -> Path:
        task_file = Path(request.workdir) / TASK_FILE
        write_text(task_file, plan.text(request.cell or request.spec_name))
        return task_file

    def _save(self, request: RunRequest, journal: dict, attempts: list[Attempt]) -> None:
        save_journal(request.journal_path, journal, attempts, self.opts["dstack_bin"])

    def _submit_env(self, plan: TaskPlan) -> dict[str, str]:
        """Values for bare env names that are not in this environment but known elsewhere: the
        Hugging Face token from the env file or ``hf auth login``. They go to the ``dstack
        apply`` process's environment only (dstack reads bare names from there)."""
        from slm_bench.secrets import TOKEN_VAR, hf_token

        extra: dict[str, str] = {}
        bare = [n for n in bare_env_names(plan.config) if n not in plan.values]
        if TOKEN_VAR in bare and not os.environ.get(TOKEN_VAR):
            env_file = self.store.env_file if self.store else ".env"
            token = hf_token(required=False, env_file=env_file)
            if token:
                extra[TOKEN_VAR] = token
                self.cli.secrets.append(token)
        missing = [n for n in bare if n not in os.environ and n not in extra]
        if missing:
            raise BenchError(
                f"config.yaml: dstack.env: environment variable {missing[0]} is not set"
                f" (the task {plan.source} passes it by name; dstack reads its value from this"
                " machine's environment)"
            )
        return extra

    def _submit(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        task_file: Path,
        plan: TaskPlan,
        reason: str,
    ) -> Attempt:
        """Pick a free name, journal it, then ``dstack apply``."""
        self._submit_env(plan)  # a missing token stops the cell before anything is journaled
        base = plan.config["name"]
        # A fresh listing: a name another process took a moment ago must count as taken.
        on_server = self._ps(request, None, not_before=time.time())
        taken = {state.name for state in on_server}
        taken |= set(journal_run_names(journal)) | {a.name for a in attempts}
        if reason == "relaunch":
            name = next_run_name(attempts[-1].name, base, taken)
        else:
            name = base if base not in taken else next_run_name(base, base, taken)
        attempt = Attempt(name=name, reason=reason, invocation=self.invocation)
        attempts.append(attempt)
        self._current = attempt
        self._save(request, journal, attempts)  # the name is durable before anything is paid for
        self._apply(request, journal, attempts, attempt, task_file, plan)
        return attempt

    def _apply(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        attempt: Attempt,
        task_file: Path,
        plan: TaskPlan,
    ) -> None:
        extra_env = self._submit_env(plan)
        try:
            output = self.cli.apply(task_file, attempt.name, plan.values, extra_env)
        except DstackCliError as error:
            attempt.state = "failed"
            attempt.run = {"name": attempt.name, "status": "failed", "submit_error": str(error)}
            self._save(request, journal, attempts)
            hint = repo_hint(str(error)) or (
                server_hint(str(error)) if server_problem(str(error)) else None
            )
            hint = f"; {hint}" if hint else ""
            raise BenchError(
                f"{request.cell}: submitting dstack run {attempt.name} failed: {error}{hint}"
            ) from None
        attempt.state = "submitted"
        attempt.applied_at = now()
        self._save(request, journal, attempts)
        self.say(f"{request.cell}: submitted dstack run {attempt.name}")
        if attempt.state == "cancelled":
            # The cancel target ran between journaling the name and this apply, so it could not
            # stop the run: stop it here rather than leave a paid run going.
            stop = self._stop(request, attempt).text("it")
            raise BenchError(f"{request.cell}: dstack run {attempt.name} was cancelled; {stop}")
        problem = apply_problem(output)
        if problem is not None:
            self._cannot_start(request, journal, attempts, attempt, plan, problem)

    def _cannot_start(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        attempt: Attempt,
        plan: TaskPlan,
        problem: Problem,
        finished: bool = False,
    ) -> None:
        """Stop a run that cannot start (it costs nothing while pending) and fail the cell with
        dstack's reason, its URL and the fix."""
        stop: StopOutcome | None = None
        if not finished:
            with contextlib.suppress(DstackCliError):  # the line then says how to stop it
                stop = self._stop(request, attempt)
        attempt.state = "failed"
        attempt.run = {**attempt.run, "name": attempt.name, "status": "failed"}
        attempt.run["problem"] = f"{problem.kind}: {problem.message}"
        self._save(request, journal, attempts)
        left = f"stop it: dstack stop -y {attempt.name}"
        if stop is not None or finished:
            left = "the run ended" if finished else stop.text("the waiting run")
        raise BenchError(
            f"{request.cell}: dstack cannot start run {attempt.name}: {problem.kind}"
            f" ({problem.message}); {problem.fix(plan.hardware, self.sources.checkout)};"
            f" {left}; {self._counts(attempts)}"
        )

    def _stop(self, request: RunRequest, attempt: Attempt) -> StopOutcome:
        """Stop the attempt's run until the server reports it ended (saying so if it comes back)."""
        (outcome,) = stop_until_ended(
            self.cli,
            self.listing.runs,
            {attempt.name: attempt.run.get("id")},
            check_s=min(FIRST_POLL_S, self.opts["poll_interval_s"]),
            sleep=self.sleep,
            clock=self.clock,
            say=lambda line: self.say(f"{request.cell}: {line}"),
        )
        return outcome

    def _ps(
        self,
        request: RunRequest,
        deadline: float | None,
        not_before: float = 0.0,
        max_age_s: float | None = None,
    ) -> list[RunState]:
        """The run listing. An unreachable server fails the cell after unreachable_timeout_s;
        other failures are retried with a doubling, capped delay."""
        delay = min(FIRST_POLL_S, self.opts["poll_interval_s"])
        started = self.clock()
        while True:
            try:
                return self.listing.runs(not_before, max_age_s=max_age_s)
            except DstackCliError as error:
                moment = self.clock()
                waited = moment - started
                if server_problem(str(error)):
                    if waited + delay > self.opts["unreachable_timeout_s"]:
                        attempt = self._current
                        left = (
                            f"; dstack run {attempt.name}, if it started, keeps going and a"
                            " rerun re-attaches to it"
                            if attempt and attempt.state not in ("submitting", "failed")
                            else ""
                        )
                        raise BenchError(
                            f"{request.cell}: dstack server unreachable for {waited:.0f}s:"
                            f" {error}; {server_hint(str(error))}{left}"
                        ) from None
                elif deadline is not None and moment > deadline:
                    raise BenchError(
                        f"dstack: gave up polling for cell {request.cell}: {error}"
                    ) from None
                elif deadline is None and waited > self.opts["poll_backoff_max_s"]:
                    raise BenchError(f"dstack: cannot list runs: {error}") from None
                self.sleep(delay)
                delay = min(delay * 2, self.opts["poll_backoff_max_s"])

    def _wait_budget_s(self, plan: TaskPlan) -> float:
        """How long a run may stay unfinished before the runner stops waiting (dstack itself
        bounds pending by the retry window and running by max_duration)."""
        from slm_bench.durations import parse_duration

        duration = plan.config.get("max_duration")
        running = parse_duration(duration, "max_duration") if duration not in (None, "off") else 0
        return running + (retry_window_s(plan.config) or 0) + WAIT_MARGIN_S

    def _wait(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        attempt: Attempt,
        task_file: Path,
        plan: TaskPlan,
        just_submitted: bool,
    ) -> RunState:
        """Poll until the attempt's run is finished, saying what happens; re-submit an apply
        that never landed; fail at once on a configuration problem."""
        budget = self._wait_budget_s(plan)
        deadline = self.clock() + budget
        progress = Progress(
            request.cell, self.opts["heartbeat_s"], retry_window_s(plan.config), self.say
        )
        # A listing from before this attempt's apply (or, for an apply that may not have
        # landed, before its name was journaled) cannot tell whether the run exists.
        applied_at = epoch(attempt.applied_at or attempt.recorded_at)
        missing = 0
        interval = min(FIRST_POLL_S, self.opts["poll_interval_s"])
        look_now = not just_submitted  # re-attaching: look right away
        while True:
            if not look_now:
                self.sleep(interval)
                interval = min(interval * 2, self.opts["poll_interval_s"])
            look_now = False
            runs = self._ps(request, deadline, not_before=applied_at, max_age_s=interval)
            state = self._find(attempt, runs)
            if state is None:
                missing += 1
                if attempt.state == "submitting":  # killed before apply returned: apply again
                    self._apply(request, journal, attempts, attempt, task_file, plan)
                    applied_at = epoch(attempt.applied_at)
                    continue
                if missing >= MISSING_POLLS_TOLERATED:
                    raise BenchError(
                        f"dstack: run {attempt.name} of cell {request.cell} is not on the server"
                        " (deleted?); remove its journal entry to submit again"
                    )
                continue
            missing = 0
            snapshot = state.to_dict()
            if snapshot != attempt.run or attempt.state != state.status:
                attempt.run = snapshot
                attempt.state = state.status
                self._save(request, journal, attempts)
            progress.update(attempt.name, state, applied_at or time.time())
            problem = configuration_problem(state)
            if problem is not None:
                self._cannot_start(
                    request, journal, attempts, attempt, plan, problem, state.finished
                )
            if state.finished:
                return state
            if self.clock() > deadline:
                raise BenchError(
                    f"dstack: run {attempt.name} still {state.status} after {budget / 3600:.1f}h;"
                    " it was not stopped"
                )

    def _find(self, attempt: Attempt, runs: list[RunState]) -> RunState | None:
        """The attempt's run in a ``ps`` page, by id once known; a run beyond the page is looked
        up in its events (only its status and reason are known then)."""
        run_id = attempt.run.get("id")
        for state in runs:
            if run_id and state.id == run_id:
                return state
        if not run_id:
            state = index_runs(runs).get(attempt.name)
            if state is not None:
                return state
        if len(runs) < PS_PAGE_SIZE:
            return None
        event = self.cli.last_event_status(attempt.name)
        if event is None:
            return None
        known = {**attempt.run, "name": attempt.name}
        known.update(status=event[0], termination_reason=event[1])
        return RunState.from_dict(known)

    def _fetch_log(self, request: RunRequest, name: str) -> None:
        delay = min(FIRST_POLL_S, self.opts["poll_interval_s"])
        for attempt_number in range(5):
            try:
                self.cli.logs(name, Path(request.log_path))
                return
            except DstackCliError as error:
                if error.not_found or attempt_number == 4:
                    raise BenchError(
                        f"dstack: cannot fetch the log of run {name}: {error}"
                    ) from None
                self.sleep(delay)
                delay = min(delay * 2, self.opts["poll_backoff_max_s"])

    def _extra(self, attempts: list[Attempt], state: RunState) -> dict:
        return {
            "cost": round(sum(float(a.run.get("cost") or 0.0) for a in attempts), 4),
            "gpu": state.gpu,
            "instance": state.instance,
            "backend": state.backend,
            "spot": state.spot,
            "wall_time_s": state.wall_time_s,
            "attempts": [a.summary() for a in attempts],
        }

    def _finish(
        self, request: RunRequest, attempts: list[Attempt], attempt: Attempt, state: RunState
    ) -> RunResult:
        from slm_bench.logs import read_run_log

        self._fetch_log(request, attempt.name)
        run_log = read_run_log(request.log_path)
        if not run_log.data_folder:
            raise BenchError(
                f"{request.log_path}: dstack run {attempt.name} is done but its log has no"
                " 'SLM-Lab: Running ... | output: data/FOLDER/...' line"
            )
        extra = self._extra(attempts, state)
        extra["uploaded_to"] = run_log.uploaded_to
        extra["inner_runner"] = self.sources.inner_runner(self.opts)  # for the provenance
        return RunResult(
            run_name=attempt.name,
            runner=self.name,
            data_folder=run_log.data_folder,
            folder_path=None,
            extra=extra,
        )

    def _counts(self, attempts: list[Attempt]) -> str:
        """``attempt 2 of this cell, 1 in this invocation``: earlier invocations' attempts
        (e.g. cancelled ones) are counted apart."""
        mine = sum(1 for a in attempts if a.invocation == self.invocation)
        return f"attempt {len(attempts)} of this cell, {mine} in this invocation"

    def _fail(
        self, request: RunRequest, attempts: list[Attempt], attempt: Attempt, state: RunState
    ) -> None:
        log_path = Path(request.log_path)
        try:
            self.cli.logs(attempt.name, log_path)
            tail = log_tail(log_path)
            where = f"log {log_path}: {tail}" if tail else "the run wrote no log"
        except DstackCliError as error:
            where = f"log unavailable: {error}"
        if log_path.is_file() and log_path.stat().st_size == 0:
            log_path.unlink()  # never point at an empty log
        reasons = state.reasons()
        raise BenchError(
            f"dstack run {attempt.name} of cell {request.cell} {state.status}"
            f"{f' ({reasons})' if reasons else ''}; {self._counts(attempts)}; {where}"
        )


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


def _interrupt(_signum: int) -> None:
    """SIGTERM (Snakemake stopping its jobs) ends the wait as Ctrl-C does."""
    raise KeyboardInterrupt
