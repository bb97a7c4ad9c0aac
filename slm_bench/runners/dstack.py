"""Remote runs through dstack's command line: submit, poll, fetch the log, re-attach, relaunch.

One cell = one dstack task running SLM-Lab's remote command (``slm-lab run ... --upload-hf``,
or the embedded ``slm-bench run`` + ``hf upload``), which uploads the run folder to the dev
dataset repo; the pipeline then pulls it from there. The runner talks to dstack only through
its CLI (``apply``, ``ps -a --json``, ``logs``, ``stop``, ``event``), so the contract is the
one a user sees, and a stand-in executable can play the server in tests.

Durability: the run name goes into the cell's journal (``RunRequest.journal_path``) *before*
``dstack apply``; a restarted pipeline finds it there and re-attaches instead of paying for a
second run. Stopping the pipeline (SIGINT/SIGTERM) never stops a remote run: only
:func:`cancel_recorded_runs` does.

Secrets: the task YAML lists env *names* (dstack reads the values from this process's
environment), and since the server echoes env values in ``ps --json``, only a summary of safe
fields (:class:`RunState`) is ever kept.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from slm_bench.atomic import write_json, write_text
from slm_bench.durations import format_duration, parse_duration
from slm_bench.errors import BenchError
from slm_bench.runners import RunRequest, RunResult
from slm_bench.validation import validate_against

TASK_FILE = "dstack-task.yml"
REPO_MOUNT = "/workflow"

RUN_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
ACTIVE_STATUSES = ("pending", "submitted", "provisioning", "running", "terminating")
FINISHED_STATUSES = ("terminated", "failed", "done")
# A spot preemption: dstack's JobTerminationReason.INTERRUPTED_BY_NO_CAPACITY, shown as the job
# message "interrupted" (dstack/_internal/server/services/jobs/__init__.py).
INTERRUPTED_REASON = "interrupted_by_no_capacity"
INTERRUPTED_MESSAGE = "interrupted"
# `dstack ps -a` lists the newest 100 runs only; an older run is looked up in its events.
PS_PAGE_SIZE = 100
# Consecutive polls a just-submitted run may be missing from `ps` before it counts as lost.
MISSING_POLLS_TOLERATED = 3

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EVENT_STATUS_RE = re.compile(
    r"Run status changed \w+ -> (?P<status>\w+)(?:\. Termination reason: (?P<reason>\w+))?"
)
_SLM_LAB_SETUP = (
    "apt-get update && apt-get install -y swig libgl1-mesa-glx libglib2.0-0 libsm6 libxext6"
    " libxrender-dev libgomp1"
)
_SPEC_ARGS = "${SPEC_VARS} ${SPEC_FILE} ${SPEC_NAME} ${LAB_MODE}"
# The embedded runner leaves one folder under data/; upload it like SLM-Lab's --upload-hf does,
# printing SLM-Lab's lines around it (as log records: a line without a timestamp would read as
# the continuation of the one before).
_LOG_RECORD = "printf '%s | INFO | PID:%s | slm_bench:upload | %s\\n' \"$(date '+%F %T')\" \"$$\""
_EMBEDDED_UPLOAD = (
    'FOLDER=$(ls -td data/*/ | head -n 1) && FOLDER="${FOLDER%/}"'
    f' && {_LOG_RECORD} "Uploading ${{FOLDER}} to ${{HF_REPO}}/${{FOLDER}}..."'
    ' && hf upload "${HF_REPO}" "${FOLDER}" "${FOLDER}" --repo-type dataset'
    " --exclude '*_optim.pt' > /dev/null"
    f' && {_LOG_RECORD} "✅ Upload complete: https://huggingface.co/datasets/${{HF_REPO}}/tree/main/${{FOLDER}}"'
)


# -- options ----------------------------------------------------------------------------------


def validate_options(options: dict) -> dict:
    """The options checked against schemas/dstack.schema.yaml, with its defaults filled in."""
    filled = copy.deepcopy(options)
    validate_against(filled, "dstack.schema.yaml", "config.yaml: dstack")
    return filled


@dataclass(frozen=True)
class StoreTarget:
    """Where the remote run uploads its folder (the pipeline's store settings)."""

    name: str
    dev_repo: str | None
    endpoint: str | None = None  # a Hub other than huggingface.co (HF_ENDPOINT remotely)
    env_file: str = ".env"  # where HF_TOKEN may be kept instead of the environment


# -- run state from `dstack ps -a --json` ---------------------------------------------------------


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


def _parse_time(value: str | None) -> dt.datetime | None:
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
        submitted = _parse_time(run.get("submitted_at"))
        finished = _parse_time(job.get("finished_at"))
        end = finished or _parse_time(run.get("last_processed_at"))
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
            parts.append(self.job_termination_message.split(". ")[0][:120])
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


# -- the dstack command line ----------------------------------------------------------------------


class DstackCliError(Exception):
    """A dstack call that failed (non-zero exit, timeout, unreadable output)."""

    def __init__(self, message: str, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in _ANSI_RE.sub("", text).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class DstackCli:
    """``dstack`` subcommands as the runner uses them; output never reaches a message unmasked."""

    def __init__(self, dstack_bin: str, secrets: Iterable[str] = (), timeout_s: float = 300):
        self.dstack_bin = dstack_bin
        self.secrets = [s for s in secrets if s and len(s) >= 4]
        self.timeout_s = timeout_s

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _call(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> str:
        command = [self.dstack_bin, *args]
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise BenchError(
                f"config.yaml: dstack.dstack_bin: {self.dstack_bin!r} not found"
                " (install dstack or set dstack_bin)"
            ) from None
        except subprocess.TimeoutExpired:
            raise DstackCliError(
                f"`dstack {args[0]}` timed out after {self.timeout_s:.0f}s"
            ) from None
        if done.returncode != 0:
            last = self.mask(_last_line(done.stdout + "\n" + done.stderr))
            raise DstackCliError(
                f"`dstack {args[0]}` exited {done.returncode}: {last}",
                not_found=last.endswith("not found"),
            )
        return done.stdout

    def apply(
        self, task_file: Path, name: str, values: dict[str, str], env: dict[str, str]
    ) -> None:
        """Submit detached; ``values`` go on the command line (never secrets), ``env`` only
        into the CLI's environment."""
        args = ["apply", "-f", task_file.name, "-y", "-d", "-n", name]
        for key, value in values.items():
            args += ["-e", f"{key}={value}"]
        self._call(*args, cwd=task_file.parent, env={**os.environ, **env} if env else None)

    def ps(self) -> list[RunState]:
        """The runs ``ps -a --json`` lists (newest first), as safe summaries only."""
        text = self._call("ps", "-a", "--json")
        try:
            return [RunState.from_json(run) for run in parse_ps_output(text)]
        except (ValueError, TypeError, AttributeError) as error:
            raise DstackCliError(f"`dstack ps -a --json`: {error}") from None

    def logs(self, name: str, dest: Path) -> None:
        """``dstack logs NAME`` into ``dest`` (through a temp sibling, then a rename)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.fetch")
        try:
            with partial.open("wb") as out:
                done = subprocess.run(
                    [self.dstack_bin, "logs", name],
                    stdout=out,
                    stderr=subprocess.PIPE,
                    timeout=self.timeout_s,
                    stdin=subprocess.DEVNULL,
                )
            if done.returncode != 0:
                last = _last_line(
                    partial.read_text(errors="replace") + done.stderr.decode(errors="replace")
                )
                raise DstackCliError(
                    f"`dstack logs {name}` exited {done.returncode}: {self.mask(last)}",
                    not_found=last.endswith("not found"),
                )
            if self.secrets:
                text = partial.read_text(encoding="utf-8", errors="replace")
                masked = self.mask(text)
                if masked != text:
                    partial.write_text(masked, encoding="utf-8")
            os.replace(partial, dest)
        except subprocess.TimeoutExpired:
            raise DstackCliError(f"`dstack logs {name}` timed out") from None
        finally:
            partial.unlink(missing_ok=True)

    def stop(self, name: str) -> bool:
        """Stop a run; False when the server does not know the name."""
        try:
            self._call("stop", "-y", name)
        except DstackCliError as error:
            if error.not_found:
                return False
            raise
        return True

    def last_event_status(self, name: str) -> tuple[str, str | None] | None:
        """(status, termination reason) from the run's newest status-change event, or None when
        the server has no such run."""
        try:
            text = self._call("event", "--target-run", name)
        except DstackCliError as error:
            if error.not_found:
                return None
            raise
        matches = list(_EVENT_STATUS_RE.finditer(text))
        if not matches:
            return ("submitted", None) if f"[run {name}]" in text else None
        # The reason comes with the change to TERMINATING, before the final status.
        reasons = [m["reason"].lower() for m in matches if m["reason"]]
        return matches[-1]["status"].lower(), (reasons[-1] if reasons else None)


class SharedListing:
    """One ``dstack ps`` answer shared by every runner process of this user and dstack setup.

    Each cell's runner polls on its own, but ``ps -a`` lists all runs and one call of the CLI
    costs seconds of CPU: a runner reuses a listing another one fetched less than ``max_age_s``
    ago (and after ``not_before``, e.g. its own ``apply``). The lock makes concurrent pollers
    wait for the one fetching instead of calling too. Only :class:`RunState` summaries are
    cached (``ps`` output holds env values), in a per-user folder with owner-only access.
    """

    def __init__(self, cli: DstackCli, max_age_s: float, folder: Path | None = None):
        self.cli = cli
        self.max_age_s = max_age_s
        if folder is None:
            folder = Path(tempfile.gettempdir()) / f"slm-bench-dstack-{os.getuid()}"
        key = "\0".join(
            [
                shutil.which(cli.dstack_bin) or cli.dstack_bin,
                os.environ.get("HOME", ""),
                os.environ.get("DSTACK_PROJECT", ""),
            ]
        )
        self.path = folder / f"ps-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"

    def runs(self, not_before: float = 0.0) -> list[RunState]:
        """A listing fetched after ``not_before`` (a ``time.time()``) and at most max_age old."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cached = self._read()
            now = time.time()
            age = now - cached["fetched_at"] if cached else math.inf
            if cached and cached["fetched_at"] >= not_before and age < self.max_age_s:
                return [RunState.from_dict(run) for run in cached["runs"]]
            states = self.cli.ps()
            fetched = {"fetched_at": now, "runs": [state.to_dict() for state in states]}
            write_text(self.path, json.dumps(fetched))
            os.chmod(self.path, 0o600)
            return states

    def _read(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(data, dict) and isinstance(data.get("runs"), list)
        return data if ok and isinstance(data.get("fetched_at"), int | float) else None


# -- names and the task -----------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower().replace("_", "-"))).strip("-")


def env_short(env_id: str) -> str:
    """SLM-Lab's run-name suffix for ``-s env=ID``: after the last ``/``, before the first ``-``."""
    return env_id.rsplit("/", 1)[-1].split("-", 1)[0].lower()


def base_run_name(spec_name: str, sets: dict[str, str]) -> str:
    """The cell's run name: the spec name (+ SLM-Lab's env suffix when ``-s env=`` is set),
    lower-cased, ``_`` -> ``-``, short enough to take a ``-N`` relaunch suffix."""
    name = _slug(spec_name)
    if sets.get("env"):
        name = f"{name}-{_slug(env_short(sets['env']))}"
    if not name or not name[0].isalpha():
        name = f"run-{name}".rstrip("-")
    if len(name) > 37:  # 41 allowed, 4 kept for "-NNN"
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[:30].rstrip('-')}-{digest}"
    if not RUN_NAME_RE.match(name):
        raise BenchError(f"spec name {spec_name!r}: cannot make a dstack run name from it")
    return name


def next_run_name(current: str, base: str, taken: Iterable[str]) -> str:
    """The next free name after ``current``: base, base-2, base-3, ..."""
    taken = set(taken)
    number = 1
    if current != base and current.startswith(f"{base}-"):
        suffix = current[len(base) + 1 :]
        number = int(suffix) if suffix.isdigit() else 1
    elif current == base:
        number = 1
    while True:
        number += 1
        name = f"{base}-{number}"
        if name not in taken:
            return name


def task_config(opts: dict, request: RunRequest, store: StoreTarget | None) -> dict:
    """The dstack task (SLM-Lab's run-gpu-train.yml shape) for ``request``."""
    repo_dir = opts["repo_dir"]
    in_repo = f"cd {REPO_MOUNT} && " if repo_dir else ""
    if opts["inner_runner"] == "slm-lab":
        launcher = "uv run slm-lab" if repo_dir else "slm-lab"
        main = [f"{in_repo}{launcher} run {_SPEC_ARGS} --upload-hf"]
        default_setup = [_SLM_LAB_SETUP, f"cd {REPO_MOUNT} && uv sync"] if repo_dir else []
    else:
        main = [f"{in_repo}slm-bench run {_SPEC_ARGS}", f"{in_repo}{_EMBEDDED_UPLOAD}"]
        default_setup = [f"cd {REPO_MOUNT} && pip install -e ."] if repo_dir else []
    setup = opts["setup_commands"] if opts["setup_commands"] is not None else default_setup

    max_duration = int(parse_duration(opts["max_duration"], "config.yaml: dstack.max_duration"))
    if request.time_limit_s and request.time_limit_s > 0:
        max_duration = min(max_duration, int(request.time_limit_s))
    config: dict = {"type": "task", "name": base_run_name(request.spec_name, request.sets)}
    config["python"] = "3.12"
    if repo_dir:
        config["repos"] = [f"{Path(repo_dir).expanduser().resolve()}:{REPO_MOUNT}"]
    config["env"] = env_names(opts, store) + ["SPEC_FILE", "SPEC_NAME", "LAB_MODE", "SPEC_VARS"]
    config["commands"] = [*setup, *main]
    config["resources"] = opts["resources"]
    config["spot_policy"] = opts["spot_policy"]
    config["max_duration"] = format_duration(max(60, max_duration))
    if opts["max_price"] is not None:
        config["max_price"] = opts["max_price"]
    if opts["retry_events"]:
        config["retry"] = {
            "on_events": list(opts["retry_events"]),
            "duration": format_duration(
                int(parse_duration(opts["retry_duration"], "config.yaml: dstack.retry_duration"))
            ),
        }
    return config


def env_names(opts: dict, store: StoreTarget | None) -> list[str]:
    """The task's env list: the configured names plus what the store settings provide."""
    names = list(opts["env"])
    for name, value in _store_values(opts, store).items():
        if value and name not in names:
            names.append(name)
    return names


def _store_values(opts: dict, store: StoreTarget | None) -> dict[str, str]:
    """HF_REPO / HF_ENDPOINT from the store settings, unless the env list passes them."""
    if store is None:
        return {}
    values = {"HF_REPO": store.dev_repo, "HF_ENDPOINT": store.endpoint}
    return {k: v for k, v in values.items() if v and k not in opts["env"]}


def submit_values(request: RunRequest, opts: dict, store: StoreTarget | None) -> dict[str, str]:
    """The ``-e KEY=VALUE`` pairs: the cell's spec, mode and sets (never a secret)."""
    for key, value in request.sets.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:/@+,=-]+", f"{key}={value}"):
            raise BenchError(
                f"config.yaml: set {key}={value!r}: dstack passes sets through a shell variable;"
                " expected no spaces or quotes"
            )
    values = {
        "SPEC_FILE": request.spec_file,
        "SPEC_NAME": request.spec_name,
        "LAB_MODE": request.mode,
        "SPEC_VARS": " ".join(f"-s {k}={v}" for k, v in request.sets.items()),
    }
    values.update(_store_values(opts, store))
    return values


# -- the journal ------------------------------------------------------------------------------


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _epoch(stamp: str | None) -> float:
    moment = _parse_time(stamp)
    return moment.timestamp() if moment else 0.0


@dataclass
class Attempt:
    """One submitted run of a cell, as the journal keeps it."""

    name: str
    reason: str  # submit | relaunch
    state: str = "submitting"  # submitting -> submitted -> a dstack run status
    recorded_at: str = field(default_factory=_now)
    applied_at: str | None = None  # when `dstack apply` returned
    run: dict = field(default_factory=dict)  # RunState.to_dict() of the last poll

    @classmethod
    def from_dict(cls, data: dict) -> Attempt:
        return cls(
            name=data["name"],
            reason=data.get("reason", "submit"),
            state=data.get("state", "submitted"),
            recorded_at=data.get("recorded_at", _now()),
            applied_at=data.get("applied_at"),
            run=data.get("run") or {},
        )

    def summary(self) -> dict:
        """What RunResult.extra["attempts"] shows of this attempt."""
        ended = self.run.get("submit_error") or (
            RunState.from_dict(self.run).reasons() if self.run.get("name") else ""
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


# -- the runner -------------------------------------------------------------------------------


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
        attempt.applied_at = _now()
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
        applied_at = _epoch(attempt.applied_at or attempt.recorded_at)
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
                    applied_at = _epoch(attempt.applied_at)
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
    kept = [line.strip() for line in _ANSI_RE.sub("", text).splitlines() if line.strip()]
    return " / ".join(line[:width] for line in kept[-lines:])


def cancel_recorded_runs(journal_paths: Iterable[Path], dstack_bin: str | None = None) -> list[str]:
    """Stop every run the journals record (``dstack stop -y NAME``); names the server no longer
    knows are skipped. Returns the names a stop was sent to. Journals are marked ``cancelled``
    so a later pipeline run submits afresh instead of re-attaching to a stopped run.
    ``dstack_bin`` defaults to the one each journal's runner used."""
    stopped: list[str] = []
    for path in journal_paths:
        # Held across read, stop and write: a runner saving a relaunch meanwhile waits, then
        # sees the cancelled marks (DstackRunner._save) instead of overwriting them.
        with journal_lock(path):
            journal = read_journal(Path(path))
            if not journal:
                continue
            cli = DstackCli(dstack_bin or journal.get("dstack_bin") or "dstack")
            entries = list(journal.get("previous", [])) + list(journal.get("attempts", []))
            for entry in entries:
                if entry.get("state") in ("done", "failed", "terminated", "cancelled"):
                    continue
                try:
                    known = cli.stop(entry["name"])
                except DstackCliError as error:
                    raise BenchError(
                        f"{path}: cannot stop dstack run {entry['name']}: {error}"
                    ) from None
                if known:
                    stopped.append(entry["name"])
                entry["state"] = "cancelled"
            write_json(Path(path), journal)
    return stopped
