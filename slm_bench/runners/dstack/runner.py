"""``runner: dstack``: submit, poll, fetch the log, re-attach, relaunch."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from slm_bench.atomic import write_json, write_text
from slm_bench.durations import format_duration, parse_duration
from slm_bench.errors import BenchError
from slm_bench.runners import RunRequest, RunResult
from slm_bench.runners.dstack.cli import ANSI_RE, DstackCli, DstackCliError, SharedListing
from slm_bench.runners.dstack.journal import (
    Attempt,
    epoch,
    journal_lock,
    journal_run_names,
    now,
    read_journal,
    relaunches,
)
from slm_bench.runners.dstack.options import StoreTarget, validate_options
from slm_bench.runners.dstack.runs import RunState, index_runs
from slm_bench.runners.dstack.task import (
    TASK_FILE,
    base_run_name,
    next_run_name,
    submit_values,
    task_config,
)

PS_PAGE_SIZE = 100
MISSING_POLLS_TOLERATED = 3


class DstackRunner:
    """``runner: dstack``: one dstack task per cell, polled until it is done."""

    name = "dstack"

    def __init__(self, options: dict | None = None):
        options = dict(options or {})
        store = options.pop("store", None)  # the pipeline's store settings, not dstack options
        self.opts = validate_options(options)
        self.store = self._store_target(store)
        self.sleep = time.sleep  # a seam for the polling benchmark's clock
        secrets = [os.environ.get(name, "") for name in self.opts["env"]]
        self.cli = DstackCli(self.opts["dstack_bin"], secrets=secrets)
        self.listing = SharedListing(self.cli, max_age_s=self.opts["poll_interval_s"])

    @staticmethod
    def _store_target(store: dict | None) -> StoreTarget | None:
        if store is None:
            return None
        name = store.get("name")
        if name != "hf":
            raise BenchError(
                f"config.yaml: store: the dstack runner needs store: hf (a remote run uploads its"
                f" folder to the dev dataset repo), got {name!r}"
            )
        return StoreTarget(
            name=name,
            dev_repo=store.get("dev_repo"),
            endpoint=store.get("endpoint"),
            env_file=store.get("env_file") or ".env",
        )

    # -- public -----------------------------------------------------------------------------

    def run(self, request: RunRequest) -> RunResult:
        journal = self._open_journal(request)
        attempts = [Attempt.from_dict(a) for a in journal["attempts"]]
        task_file = self._write_task(request)
        base = base_run_name(request.spec_name, request.sets)

        current = attempts[-1] if attempts else None
        just_submitted = False
        if current is None or current.state in ("failed", "terminated", "cancelled"):
            # Nothing to re-attach to: a first run, or a rerun after a failure or a cancel.
            current = self._submit(request, journal, attempts, task_file, base, reason="submit")
            just_submitted = True
        while True:
            state = self._wait(request, journal, attempts, current, task_file, just_submitted)
            if state.status == "done":
                return self._finish(request, attempts, current, state)
            if state.interrupted and relaunches(attempts) < self.opts["max_relaunches"]:
                current = self._submit(
                    request, journal, attempts, task_file, base, reason="relaunch"
                )
                just_submitted = True
                continue
            self._fail(request, attempts, current, state)

    # -- steps ------------------------------------------------------------------------------

    def _open_journal(self, request: RunRequest) -> dict:
        journal = read_journal(request.journal_path)
        if journal.get("fingerprint") != request.fingerprint and journal.get("attempts"):
            # Other work (the spec changed): keep its names so cancel can still reach them.
            previous = list(journal.get("previous", [])) + list(journal["attempts"])
            journal = {"previous": previous}
        journal.update(
            runner=self.name,
            cell=request.cell,
            fingerprint=request.fingerprint,
            spec_file=request.spec_file,
            spec_name=request.spec_name,
        )
        journal.setdefault("attempts", [])
        journal.setdefault("previous", [])
        return journal

    def _save(self, request: RunRequest, journal: dict, attempts: list[Attempt]) -> None:
        """Write the journal, keeping a ``cancelled`` mark the cancel target put there meanwhile."""
        with journal_lock(request.journal_path):
            on_disk = read_journal(request.journal_path).get("attempts", [])
            cancelled = {a.get("name") for a in on_disk if a.get("state") == "cancelled"}
            for attempt in attempts:
                if attempt.name in cancelled:
                    attempt.state = "cancelled"
            journal["attempts"] = [asdict(a) for a in attempts]
            journal["dstack_bin"] = self.opts["dstack_bin"]
            write_json(request.journal_path, journal)

    def _write_task(self, request: RunRequest) -> Path:
        config = task_config(self.opts, request, self.store)
        header = (
            f"# dstack task of cell {request.cell or request.spec_name}, written by slm-bench.\n"
            "# Submitted as: dstack apply -f dstack-task.yml -y -d -n NAME -e SPEC_FILE=..."
            " -e SPEC_NAME=... -e LAB_MODE=... -e SPEC_VARS=...\n"
        )
        path = Path(request.workdir) / TASK_FILE
        write_text(path, header + yaml.safe_dump(config, sort_keys=False, width=1000))
        return path

    def _submit_env(self) -> dict[str, str]:
        """Values for the env names that are not in this environment but known elsewhere: the
        Hugging Face token from the env file or ``hf auth login``. They go to the ``dstack
        apply`` process's environment only (dstack reads bare names from there)."""
        from slm_bench.secrets import TOKEN_VAR, hf_token

        extra: dict[str, str] = {}
        if TOKEN_VAR in self.opts["env"] and not os.environ.get(TOKEN_VAR):
            env_file = self.store.env_file if self.store else ".env"
            token = hf_token(required=False, env_file=env_file)
            if token:
                extra[TOKEN_VAR] = token
                self.cli.secrets.append(token)
        missing = [n for n in self.opts["env"] if not os.environ.get(n) and n not in extra]
        if missing:
            raise BenchError(
                f"config.yaml: dstack.env: environment variable {missing[0]} is not set"
                " (dstack reads its value from this machine's environment)"
            )
        return extra

    def _submit(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        task_file: Path,
        base: str,
        reason: str,
    ) -> Attempt:
        """Pick a free name, journal it, then ``dstack apply``."""
        self._submit_env()  # a missing token stops the cell before anything is journaled
        values = submit_values(request, self.opts, self.store)
        # A fresh listing: a name another process took a moment ago must count as taken.
        on_server = self._ps_with_backoff(request, deadline=None, not_before=time.time())
        taken = {state.name for state in on_server}
        taken |= set(journal_run_names(journal)) | {a.name for a in attempts}
        if reason == "relaunch":
            name = next_run_name(attempts[-1].name, base, taken)
        else:
            name = base if base not in taken else next_run_name(base, base, taken)
        attempt = Attempt(name=name, reason=reason)
        attempts.append(attempt)
        self._save(request, journal, attempts)  # the name is durable before anything is paid for
        self._apply(request, journal, attempts, attempt, task_file, values)
        return attempt

    def _apply(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        attempt: Attempt,
        task_file: Path,
        values: dict[str, str],
    ) -> None:
        extra_env = self._submit_env()
        try:
            self.cli.apply(task_file, attempt.name, values, extra_env)
        except DstackCliError as error:
            attempt.state = "failed"
            attempt.run = {"name": attempt.name, "status": "failed", "submit_error": str(error)}
            self._save(request, journal, attempts)
            raise BenchError(f"dstack: submitting run {attempt.name} failed: {error}") from None
        attempt.state = "submitted"
        attempt.applied_at = now()
        self._save(request, journal, attempts)
        if attempt.state == "cancelled":
            # The cancel target ran between journaling the name and this apply, so it could not
            # stop the run: stop it here rather than leave a paid run going.
            self.cli.stop(attempt.name)
            raise BenchError(f"{request.cell}: dstack run {attempt.name} was cancelled")

    def _ps_with_backoff(
        self, request: RunRequest, deadline: float | None, not_before: float = 0.0
    ) -> list[RunState]:
        """The run listing, retried with a doubling, capped delay while dstack is unreachable."""
        delay = self.opts["poll_interval_s"]
        failures = 0
        while True:
            try:
                return self.listing.runs(not_before)
            except DstackCliError as error:
                failures += 1
                if deadline is not None and time.monotonic() > deadline:
                    raise BenchError(
                        f"dstack: gave up polling for cell {request.cell}: {error}"
                    ) from None
                if deadline is None and failures >= 5:
                    raise BenchError(f"dstack: cannot list runs: {error}") from None
                delay = min(delay * 2, self.opts["poll_backoff_max_s"])
                self.sleep(delay)

    def _wait_budget_s(self) -> float:
        """How long a run may stay unfinished before the runner stops waiting (dstack itself
        bounds pending by retry_duration and running by max_duration)."""
        max_duration = int(
            parse_duration(self.opts["max_duration"], "config.yaml: dstack.max_duration")
        )
        retry = int(
            parse_duration(self.opts["retry_duration"], "config.yaml: dstack.retry_duration")
        )
        return max_duration + (retry if self.opts["retry_events"] else 0) + 3600

    def _wait(
        self,
        request: RunRequest,
        journal: dict,
        attempts: list[Attempt],
        attempt: Attempt,
        task_file: Path,
        just_submitted: bool,
    ) -> RunState:
        """Poll until the attempt's run is finished; re-submit an apply that never landed."""
        deadline = time.monotonic() + self._wait_budget_s()
        # A listing from before this attempt's apply (or, for an apply that may not have
        # landed, before its name was journaled) cannot tell whether the run exists.
        applied_at = epoch(attempt.applied_at or attempt.recorded_at)
        missing = 0
        look_now = not just_submitted  # re-attaching: look right away
        while True:
            if not look_now:
                self.sleep(self.opts["poll_interval_s"])
            look_now = False
            runs = self._ps_with_backoff(request, deadline, not_before=applied_at)
            state = self._find(attempt, runs)
            if state is None:
                missing += 1
                if attempt.state == "submitting":  # killed before apply returned: apply again
                    values = submit_values(request, self.opts, self.store)
                    self._apply(request, journal, attempts, attempt, task_file, values)
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
            if state.finished:
                return state
            if time.monotonic() > deadline:
                raise BenchError(
                    f"dstack: run {attempt.name} still {state.status} after"
                    f" {format_duration(int(self._wait_budget_s()))}; it was not stopped"
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
        delay = self.opts["poll_interval_s"]
        for attempt_number in range(5):
            try:
                self.cli.logs(name, Path(request.log_path))
                return
            except DstackCliError as error:
                if error.not_found or attempt_number == 4:
                    raise BenchError(
                        f"dstack: cannot fetch the log of run {name}: {error}"
                    ) from None
                delay = min(delay * 2, self.opts["poll_backoff_max_s"])
                self.sleep(delay)

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
        return RunResult(
            run_name=attempt.name,
            runner=self.name,
            data_folder=run_log.data_folder,
            folder_path=None,
            extra=extra,
        )

    def _fail(
        self, request: RunRequest, attempts: list[Attempt], attempt: Attempt, state: RunState
    ) -> None:
        tail = "(no log)"
        try:
            self.cli.logs(attempt.name, Path(request.log_path))
            tail = log_tail(Path(request.log_path)) or "(empty log)"
        except DstackCliError as error:
            tail = f"(log unavailable: {error})"
        reasons = state.reasons()
        tried = f" after {len(attempts)} attempts" if len(attempts) > 1 else ""
        raise BenchError(
            f"dstack run {attempt.name} of cell {request.cell} {state.status}"
            f"{f' ({reasons})' if reasons else ''}{tried}; log {request.log_path}: {tail}"
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
