"""One trial of the embedded runner's search: the spec with the sampled values written in, trained
as an ordinary embedded ``train`` run in a process of its own, its console lines relayed into the
search log and its (frame, MA) checkpoints reported to Optuna's pruner.

Trial i's sessions are seeded from ``base + 1e5 * i`` as SLM-Lab's are (``trial_seed``).

The search's running trial processes are held in ``TrialProcesses``, so that a search stopped by
a signal to it alone stops them too, instead of waiting for them to finish training.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import optuna

from slm_bench.formats.logs import strip_ansi
from slm_bench.formats.run_folder import load_json
from slm_bench.runners.embedded.reevaluate import run_sessions
from slm_bench.runners.progress import RECORD

_FRAME_RE = re.compile(r"frame:\s*([-+0-9.eE]+)")
_MA_RE = re.compile(r"total_reward_ma:\s*([-+0-9.eEnaif]+)")
_TRIAL_ZERO = re.compile(r"Trial 0 (?=session |done)")  # no \b: a colour code ends in "m"
_SESSION_OF_T0 = re.compile(r"_t0_s(?=\d)")


def set_path(body: dict, path: str, value: object) -> None:
    """pydash.set_ as SLM-Lab's inject_config uses it: create missing mappings on the way."""
    *parents, last = path.split(".")
    node = body
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value


@dataclass
class TrialOutcome:
    index: int
    values: dict[str, object]
    metrics: dict[str, float] = field(default_factory=dict)
    folder: Path | None = None
    state: str = "complete"  # complete | pruned | failed
    error: str = ""
    sessions: list[float] = field(default_factory=list)  # each session's final MA
    seeds: list[int] | None = None  # as the run folder recorded them

    @property
    def score(self) -> float:
        return float(self.metrics.get("total_reward_ma", math.nan))


STOP_GRACE_S = 10  # a trial's own SIGTERM handler stops it (and its sessions) in about a second


class SearchStopped(Exception):
    """The search is stopping: no trial starts, and a stopped trial has no outcome."""


class TrialProcesses:
    """The search's running trial processes, started from its trial threads. ``stop`` ends them
    all and starts no more; as a context, it runs on the way out, before the trials' scratch
    folders are removed."""

    def __init__(self) -> None:
        self.running: set[subprocess.Popen] = set()
        self.stopping = False
        self.lock = threading.RLock()  # re-entered when a signal handler stops on the same thread

    def start(self, argv: list[str], workdir: Path) -> subprocess.Popen:
        with self.lock:
            if self.stopping:
                raise SearchStopped
            process = subprocess.Popen(
                argv,
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            self.running.add(process)
            return process

    def finished(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.running.discard(process)

    def stop(self) -> None:
        """SIGTERM to every running trial (each is a ``slm-bench run``: its handler stops its
        sessions and exits), SIGKILL to any still running ``STOP_GRACE_S`` later."""
        with self.lock:
            self.stopping = True
            processes = list(self.running)
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> TrialProcesses:
        return self

    def __exit__(
        self, kind: type | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def trial_body(spec: Mapping, values: Mapping[str, object], single_session: bool) -> dict:
    body = copy.deepcopy(dict(spec))
    body.pop("search", None)
    if single_session:
        body.setdefault("meta", {})["max_session"] = 1
    for path, value in values.items():
        set_path(body, path, value)
    return body


class TrialRelay:
    """A trial's console lines into the search log, whole records at a time and numbered as
    SLM-Lab's search numbers them (``Trial 3 session 0 NAME_t3_s0``): each trial runs as a
    ``train`` of its own (trial 0 to itself), and parallel trials must not interleave inside a
    multi-line checkpoint summary, or a reader would pair one trial's frame with another's MA."""

    def __init__(self, index: int, write: Callable[[str], None]) -> None:
        self.write = write
        self.renames = ((_TRIAL_ZERO, f"Trial {index} "), (_SESSION_OF_T0, f"_t{index}_s"))
        self.record: list[str] = []

    def feed(self, line: str) -> None:
        if RECORD.match(strip_ansi(line)):
            self.flush()
        for pattern, new in self.renames:
            line = pattern.sub(new, line)
        self.record.append(line)

    def flush(self) -> None:
        if self.record:
            self.write("".join(self.record))
            self.record = []


def _watch(
    process: subprocess.Popen, trial: optuna.Trial | None, prunable: bool, relay: TrialRelay
) -> bool:
    """Relay the trial's console lines; report (frame, MA) checkpoints to Optuna and stop the
    trial when the pruner says so. True when pruned."""
    try:
        return _watch_lines(process, trial, prunable, relay)
    finally:
        relay.flush()


def _watch_lines(
    process: subprocess.Popen, trial: optuna.Trial | None, prunable: bool, relay: TrialRelay
) -> bool:
    last_ma: float | None = None
    assert process.stdout is not None
    for line in process.stdout:
        relay.feed(line)
        if not prunable or trial is None:
            continue
        plain = strip_ansi(line)
        ma = _MA_RE.search(plain)
        if ma and "trial_metrics" not in plain:
            try:
                last_ma = float(ma.group(1))
            except ValueError:
                last_ma = None
        frame = _FRAME_RE.search(plain)
        if frame and last_ma is not None and math.isfinite(last_ma):
            trial.report(last_ma, int(float(frame.group(1))))
            last_ma = None
            if trial.should_prune():
                process.terminate()
                process.wait()
                return True
    return False


def trial_seed(base: int, index: int) -> int:
    """Trial ``index``'s base seed: SLM-Lab seeds a search's session ``1e5 * trial + 1e3 *
    session + base``; the trial adds ``1e3 * session`` itself. Never the bare time per trial:
    trials started in the same second would share every seed."""
    return int(base + 100_000 * index) % 2**32


def run_trial_process(
    index: int,
    trial: optuna.Trial | None,
    body: dict,
    spec_name: str,
    scratch: Path,
    prunable: bool,
    relay: Callable[[str], None],
    seed: int,
    processes: TrialProcesses,
) -> TrialOutcome:
    """Trial ``index`` trained in a process of its own (started through ``processes``); raises
    ``SearchStopped`` once the search stops."""
    workdir = scratch / f"trial_{index}"
    workdir.mkdir(parents=True)
    spec_path = workdir / "trial_spec.json"
    spec_path.write_text(json.dumps({spec_name: body}, indent=2), encoding="utf-8")
    argv = [
        sys.executable,
        "-m",
        "slm_bench",
        "run",
        "--seed",
        str(seed),
        "--",
        str(spec_path.resolve()),
        spec_name,
        "train",
    ]
    process = processes.start(argv, workdir)
    try:
        pruned = _watch(process, trial, prunable, TrialRelay(index, relay))
        process.wait()
    finally:
        processes.finished(process)
    if processes.stopping:
        raise SearchStopped
    outcome = TrialOutcome(index, {})
    if pruned:
        outcome.state = "pruned"
        return outcome
    if process.returncode != 0:
        outcome.state, outcome.error = "failed", f"trial {index} exited with {process.returncode}"
        return outcome
    folders = [p for p in (workdir / "data").iterdir() if p.is_dir()]
    outcome.folder = folders[0]
    metrics_file = next(outcome.folder.glob("*_t0_trial_metrics_scalar.json"))
    outcome.metrics = {k: float(v) for k, v in load_json(metrics_file).items()}
    outcome.sessions, outcome.seeds = run_sessions(outcome.folder)
    return outcome
