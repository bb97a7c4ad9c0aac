"""One trial of the embedded runner's search: the spec with the sampled values written in, trained
as an ordinary embedded ``train`` run in a process of its own, its console lines relayed into the
search log and its (frame, MA) checkpoints reported to Optuna's pruner.

Trial i's sessions are seeded from ``base + 1e5 * i`` as SLM-Lab's are (``trial_seed``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
) -> TrialOutcome:
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
    process = subprocess.Popen(
        argv,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    outcome = TrialOutcome(index, {})
    if _watch(process, trial, prunable, TrialRelay(index, relay)):
        outcome.state = "pruned"
        return outcome
    if process.wait() != 0:
        outcome.state, outcome.error = "failed", f"trial {index} exited with {process.returncode}"
        return outcome
    folders = [p for p in (workdir / "data").iterdir() if p.is_dir()]
    outcome.folder = folders[0]
    metrics_file = next(outcome.folder.glob("*_t0_trial_metrics_scalar.json"))
    outcome.metrics = {k: float(v) for k, v in load_json(metrics_file).items()}
    outcome.sessions, outcome.seeds = run_sessions(outcome.folder)
    return outcome
