"""``slm-bench run SPEC_FILE SPEC_NAME search``: the embedded runner's hyperparameter search.

SLM-Lab searches with Ray Tune + Optuna (slm_lab/experiment/search.py); here Optuna drives the
search directly (TPE sampler; ASHA-style early stopping through Optuna's successive-halving
pruner when ``meta.search_scheduler`` is set, with single-session trials as SLM-Lab forces).
Each trial is an ordinary embedded ``train`` run of the spec with the sampled values written in,
in a process of its own, up to ``workers`` at once. The trials' run folders are then gathered
into one search folder laid out as SLM-Lab's (``{name}_spec.json`` with ``meta.trial == -1`` and
the search block, trials ``t0..tN``, ``info/{name}_experiment_df.csv``,
``info/{name}_trial_data_dict.json``), so SLM-Lab's retro-analysis could read it, and the log
holds one ``trial_metrics:`` line per trial, as SLM-Lab's search log does.

Then the best trials (``reevaluate_top``, 3 by default) are trained again, one run each with every
session of the spec, on seeds no trial used (``evaluate.py``); the runs' sessions and seeds are
recorded in ``info/{name}_evaluations.json`` for the pick (``results.py``). With ASHA this is
SLM-Lab's staged practice: single-session trials, then multi-session runs of the survivors, then
(after ``apply_search``) the validating train run.

Trial i's sessions are seeded from ``base + 1e5 * i`` as SLM-Lab's are, ``base`` being the
search's start time or, with a fixed seed (the config's ``seed``, through the cell's), that seed,
which also seeds the TPE sampler: one worker then repeats a search exactly; with several at
once, which trials have finished when the sampler suggests the next values can differ.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import optuna

from slm_bench.errors import BenchError
from slm_bench.logs import output_message, running_message, strip_ansi, trial_metrics_message
from slm_bench.metrics import SCALAR_KEYS
from slm_bench.progress import RECORD
from slm_bench.run_folder import FOLDER_TS_FORMAT, folder_prefix, load_json
from slm_bench.runners.embedded.console import Console
from slm_bench.runners.embedded.output import write_slm_json
from slm_bench.runners.embedded.trial import reserve_folder
from slm_bench.search.evaluate import (
    check_session_count,
    evaluations_path,
    reevaluate,
    run_sessions,
)
from slm_bench.search.space import SearchSpace, read_space, trial_budget

SEARCH_LOGGER = ("slm_lab.experiment.search", "run_ray_search")
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


def _trial_body(spec: Mapping, values: Mapping[str, object], single_session: bool) -> dict:
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


def _watch(process: subprocess.Popen, trial: optuna.Trial | None, prunable: bool, relay) -> bool:
    """Relay the trial's console lines; report (frame, MA) checkpoints to Optuna and stop the
    trial when the pruner says so. True when pruned."""
    try:
        return _watch_lines(process, trial, prunable, relay)
    finally:
        relay.flush()


def _watch_lines(
    process: subprocess.Popen, trial: optuna.Trial | None, prunable: bool, relay
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


def _run_one(
    index: int,
    trial: optuna.Trial | None,
    body: dict,
    spec_name: str,
    scratch: Path,
    prunable: bool,
    relay,
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


def _gather(outcome: TrialOutcome, root: Path, run_name: str) -> None:
    """Copy a trial's run folder into the search folder as trial ``t{index}``."""
    assert outcome.folder is not None
    trial_name = folder_prefix(outcome.folder)  # the trial ran without -s, so no env suffix
    for source in outcome.folder.rglob("*"):
        if not source.is_file():
            continue
        relative = source.relative_to(outcome.folder)
        if relative.parent == Path(".") and relative.name == f"{trial_name}_spec.json":
            continue  # the experiment spec is the search's own
        name = relative.name.replace(f"{trial_name}_t0", f"{run_name}_t{outcome.index}", 1)
        target = root / relative.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.name.endswith("_spec.json"):
            trial_spec = load_json(source)
            trial_spec.setdefault("meta", {})["trial"] = outcome.index
            write_slm_json(target, trial_spec)
        else:
            shutil.copy2(source, target)


def _experiment_rows(outcomes: list[TrialOutcome], space: SearchSpace) -> list[dict]:
    """SLM-Lab's experiment_df: trial, the searched keys (sorted), the metrics; by strength."""
    rows = []
    for outcome in outcomes:
        row: dict[str, object] = {"trial": outcome.index}
        row.update({path: outcome.values[path] for path in sorted(space.paths)})
        row.update({key: outcome.metrics.get(key, math.nan) for key in SCALAR_KEYS})
        rows.append(row)

    def strength(row: dict) -> float:
        value = float(row["strength"])
        return value if math.isfinite(value) else -math.inf

    return sorted(rows, key=strength, reverse=True)


def _write_csv(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


@dataclass
class Reevaluation:
    """The search's best trials trained again on fresh seeds, as runs ``n_trials + j``."""

    spec: Mapping
    spec_name: str
    scratch: Path
    relay: Callable[[str], None]
    base_seed: int
    n_trials: int

    def launch(self, run: int, body: dict) -> tuple[Path | None, str]:
        seed = trial_seed(self.base_seed, run)
        outcome = _run_one(run, None, body, self.spec_name, self.scratch, False, self.relay, seed)
        return outcome.folder, outcome.error

    def run(self, outcomes: list[TrialOutcome], top: int, workers: int, say) -> dict:
        """Re-evaluate the ``top`` best finished trials; the record of the trials' and the
        evaluations' sessions and seeds (``info/{name}_evaluations.json``)."""
        scored = [o for o in outcomes if o.state == "complete" and math.isfinite(o.score)]
        best = sorted(scored, key=lambda o: o.score, reverse=True)[:top]
        if best:
            say(
                f"re-evaluating the {len(best)} best trials"
                f" ({', '.join(str(o.index) for o in best)}) on fresh seeds, every session"
            )
        ranked = [(o.index, _trial_body(self.spec, o.values, single_session=False)) for o in best]
        evaluations = reevaluate(ranked, self.n_trials, self.launch, say, workers)
        return {
            "reevaluate_top": top,
            "base_seed": self.base_seed,
            "trials": {str(o.index): {"sessions": o.sessions, "seeds": o.seeds} for o in outcomes},
            "evaluations": [e.as_dict() for e in evaluations],
        }


def run_search(
    spec: dict,
    spec_file: str,
    spec_name: str,
    run_name: str,
    data_root: Path,
    workers: int = 1,
    stream: TextIO | None = None,
    seed: int | None = None,
    reevaluate_top: int = 3,
) -> Path:
    """Search the spec's ``search:`` block and write the search folder under ``data_root``;
    then train the ``reevaluate_top`` best trials again on fresh seeds (``evaluate.py``)."""
    stream = stream or sys.stdout
    where = f"{spec_file}: {spec_name}"
    space = read_space(spec, where)
    n_trials, budget_warnings = trial_budget(spec, space, where)
    meta = spec.get("meta", {})
    scheduler = meta.get("search_scheduler")
    single_session = scheduler is not None and meta.get("max_session", 1) > 1
    check_session_count(meta.get("max_session"), where)
    console = Console(stream)
    lock = threading.Lock()

    def relay(line: str) -> None:
        with lock:
            stream.write(line)
            stream.flush()

    def say(message: str, level: str = "INFO") -> None:
        with lock:
            console.log(message, *SEARCH_LOGGER, level=level)

    folder, when, reservation = reserve_folder(Path(data_root), run_name)
    root = Path(data_root) / folder
    say(running_message(spec_file, spec_name, "search", 0, f"data/{folder}/{run_name}"))
    for warning in budget_warnings:
        say(warning, level="WARNING")
    if single_session:
        say(
            f"ASHA scheduler enabled: overriding max_session from {meta['max_session']} to 1"
            " (ASHA requires single-session trials for early termination)"
        )
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if scheduler is not None:
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=int(scheduler.get("grace_period", 1)),
            reduction_factor=int(scheduler.get("reduction_factor", 4)),
        )
    base_seed = int(time.time()) if seed is None else seed
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner
    )
    distributions = {d.path: d.distribution() for d in space.dimensions}
    say(
        f"Optuna search: {n_trials} trials over {len(space.dimensions)} dimensions"
        f" ({', '.join(space.paths)}), total_reward_ma (max), {max(1, workers)} at once"
    )
    outcomes: list[TrialOutcome] = []
    best: list[TrialOutcome] = []

    def one_trial(index: int, scratch: Path) -> None:
        with lock:
            trial = study.ask(distributions)
        values = space.values(trial.params)
        body = _trial_body(spec, values, single_session)
        try:
            outcome = _run_one(
                index,
                trial,
                body,
                spec_name,
                scratch,
                scheduler is not None,
                relay,
                trial_seed(base_seed, index),
            )
        except (OSError, StopIteration, ValueError) as error:
            outcome = TrialOutcome(index, {}, state="failed", error=f"trial {index}: {error}")
        outcome.values = values
        with lock:
            if outcome.state == "pruned":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif outcome.state == "failed" or not math.isfinite(outcome.score):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, outcome.score)
            outcomes.append(outcome)
            done = len(outcomes)
            finished = [o for o in outcomes if o.state == "complete" and math.isfinite(o.score)]
            if finished:
                best[:] = [max(finished, key=lambda o: o.score)]
            top = f"{best[0].score:.2f} (trial {best[0].index})" if best else "none yet"
        score = f"{outcome.score:.2f}" if outcome.state == "complete" else outcome.state
        say(
            f"search {spec_name}: trial {index} done ({done} of {n_trials}):"
            f" total_reward_ma {score} | best so far {top}"
        )

    try:
        with tempfile.TemporaryDirectory(prefix=".search-", dir=data_root) as scratch:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, n_trials))) as pool:
                futures = [pool.submit(one_trial, i, Path(scratch)) for i in range(n_trials)]
                for future in futures:
                    future.result()
            outcomes.sort(key=lambda o: o.index)
            if not any(o.state == "complete" for o in outcomes):
                errors = "; ".join(o.error or o.state for o in outcomes)
                raise BenchError(f"{where}: search: no trial finished ({errors})")

            again = Reevaluation(spec, spec_name, Path(scratch), relay, base_seed, n_trials)
            record = again.run(outcomes, reevaluate_top, workers, say)
            _write_folder(root, spec, run_name, folder, when, space, outcomes)
            write_slm_json(evaluations_path(root), record)
        reservation.unlink(missing_ok=True)
        for outcome in outcomes:
            metrics = {k: outcome.metrics.get(k, math.nan) for k in SCALAR_KEYS}
            say(trial_metrics_message(metrics))
        say("Experiment done")
        say(output_message(folder))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        reservation.unlink(missing_ok=True)
        raise
    return root


def _write_folder(
    root: Path,
    spec: Mapping,
    run_name: str,
    folder: str,
    when,
    space: SearchSpace,
    outcomes: list[TrialOutcome],
) -> None:
    root.mkdir(parents=True)
    experiment_spec = copy.deepcopy(dict(spec))
    experiment_spec["name"] = run_name
    experiment_spec.setdefault("meta", {}).update(
        experiment=0,
        trial=-1,
        session=-1,
        experiment_ts=when.strftime(FOLDER_TS_FORMAT),
        predir=f"data/{folder}",
        prepath=f"data/{folder}/{run_name}",
    )
    write_slm_json(root / f"{run_name}_spec.json", experiment_spec)
    for outcome in outcomes:
        if outcome.folder is not None:
            _gather(outcome, root, run_name)
    rows = _experiment_rows(outcomes, space)
    for csv in (
        root / "info" / f"{run_name}_experiment_df.csv",
        root / f"{run_name}_experiment_df.csv",
    ):
        _write_csv(csv, rows)
    trial_data = {
        str(o.index): {**o.values, **{k: o.metrics.get(k, math.nan) for k in SCALAR_KEYS}}
        for o in outcomes
    }
    write_slm_json(root / "info" / f"{run_name}_trial_data_dict.json", trial_data)
