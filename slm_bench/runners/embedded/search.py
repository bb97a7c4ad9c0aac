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
session of the spec, on seeds no trial used (``reevaluate.py``); the runs' sessions and seeds are
recorded in ``info/{name}_evaluations.json`` for the pick (``results.py``). With ASHA this is
SLM-Lab's staged practice: single-session trials, then multi-session runs of the survivors, then
(after ``apply_search``) the validating train run.

Trial i's sessions are seeded from ``base + 1e5 * i`` as SLM-Lab's are, ``base`` being the
search's start time or, with a fixed seed (the config's ``seed``, through the cell's), that seed,
which also seeds the TPE sampler: one worker then repeats a search exactly; with several at
once, which trials have finished when the sampler suggests the next values can differ.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import optuna

from slm_bench.errors import BenchError
from slm_bench.formats.logs import output_message, running_message, trial_metrics_message
from slm_bench.formats.metrics import SCALAR_KEYS
from slm_bench.runners.embedded.console import Console
from slm_bench.runners.embedded.output import write_slm_json
from slm_bench.runners.embedded.reevaluate import check_session_count, reevaluate
from slm_bench.runners.embedded.search_folder import write_search_folder
from slm_bench.runners.embedded.search_trial import (
    TrialOutcome,
    TrialProcesses,
    run_trial_process,
    trial_body,
    trial_seed,
)
from slm_bench.runners.embedded.trial import reserve_folder
from slm_bench.runners.stop_signals import stop_first
from slm_bench.search.results import evaluations_path
from slm_bench.search.space import SearchSpace, read_space, trial_budget

SEARCH_LOGGER = ("slm_lab.experiment.search", "run_ray_search")


class SearchLog:
    """The search log, written by parallel trials: a relayed trial record or one of the search's
    own lines at a time."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.console = Console(stream)
        self.lock = threading.Lock()

    def relay(self, line: str) -> None:
        with self.lock:
            self.stream.write(line)
            self.stream.flush()

    def say(self, message: str, level: str = "INFO") -> None:
        with self.lock:
            self.console.log(message, *SEARCH_LOGGER, level=level)


@dataclass(frozen=True)
class SearchPlan:
    """What the spec asks of the search: its space, its trials, and ASHA's early stopping."""

    space: SearchSpace
    n_trials: int
    warnings: list[str]
    scheduler: Mapping | None
    single_session: bool  # ASHA: trials of one session each, as SLM-Lab forces
    max_session: object

    @classmethod
    def read(cls, spec: Mapping, where: str) -> SearchPlan:
        space = read_space(spec, where)
        n_trials, warnings = trial_budget(spec, space, where)
        meta = spec.get("meta", {})
        scheduler = meta.get("search_scheduler")
        single_session = scheduler is not None and meta.get("max_session", 1) > 1
        check_session_count(meta.get("max_session"), where)
        return cls(space, n_trials, warnings, scheduler, single_session, meta.get("max_session"))

    def pruner(self) -> optuna.pruners.BasePruner:
        if self.scheduler is None:
            return optuna.pruners.NopPruner()
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=int(self.scheduler.get("grace_period", 1)),
            reduction_factor=int(self.scheduler.get("reduction_factor", 4)),
        )


def best_outcome(outcomes: list[TrialOutcome]) -> TrialOutcome | None:
    """The finished trial with the highest MA (the first of equals), None before any."""
    finished = [o for o in outcomes if o.state == "complete" and math.isfinite(o.score)]
    return max(finished, key=lambda o: o.score) if finished else None


class StudyTally:
    """Optuna's study shared by the trial threads: values asked and outcomes told under one
    lock, with the outcomes in the order they finished."""

    def __init__(self, study: optuna.Study, space: SearchSpace) -> None:
        self.study = study
        self.distributions = {d.path: d.distribution() for d in space.dimensions}
        self.outcomes: list[TrialOutcome] = []
        self.lock = threading.Lock()

    def ask(self) -> optuna.Trial:
        with self.lock:
            return self.study.ask(self.distributions)

    def tell(self, trial: optuna.Trial, outcome: TrialOutcome) -> tuple[int, TrialOutcome | None]:
        """Record the outcome; how many trials are done, and the best so far."""
        with self.lock:
            if outcome.state == "pruned":
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif outcome.state == "failed" or not math.isfinite(outcome.score):
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, outcome.score)
            self.outcomes.append(outcome)
            return len(self.outcomes), best_outcome(self.outcomes)


@dataclass
class TrialRunner:
    """Runs the search's trials, up to ``workers`` at once: each asks the study for values,
    trains them in a process of its own and tells the study how it went."""

    spec: Mapping
    spec_name: str
    plan: SearchPlan
    tally: StudyTally
    log: SearchLog
    base_seed: int
    scratch: Path
    processes: TrialProcesses

    def run_all(self, workers: int) -> list[TrialOutcome]:
        """Every trial's outcome, by index."""
        n_trials = self.plan.n_trials
        with ThreadPoolExecutor(max_workers=max(1, min(workers, n_trials))) as pool:
            futures = [pool.submit(self.run_one, i) for i in range(n_trials)]
            for future in futures:
                future.result()
        return sorted(self.tally.outcomes, key=lambda o: o.index)

    def run_one(self, index: int) -> None:
        trial = self.tally.ask()
        values = self.plan.space.values(trial.params)
        body = trial_body(self.spec, values, self.plan.single_session)
        prunable = self.plan.scheduler is not None
        seed = trial_seed(self.base_seed, index)
        try:
            outcome = run_trial_process(
                index,
                trial,
                body,
                self.spec_name,
                self.scratch,
                prunable,
                self.log.relay,
                seed,
                self.processes,
            )
        except (OSError, StopIteration, ValueError) as error:
            outcome = TrialOutcome(index, {}, state="failed", error=f"trial {index}: {error}")
        outcome.values = values
        done, best = self.tally.tell(trial, outcome)
        top = f"{best.score:.2f} (trial {best.index})" if best else "none yet"
        score = f"{outcome.score:.2f}" if outcome.state == "complete" else outcome.state
        self.log.say(
            f"search {self.spec_name}: trial {index} done ({done} of {self.plan.n_trials}):"
            f" total_reward_ma {score} | best so far {top}"
        )


@dataclass
class Reevaluation:
    """The search's best trials trained again on fresh seeds, as runs ``n_trials + j``."""

    spec: Mapping
    spec_name: str
    scratch: Path
    relay: Callable[[str], None]
    base_seed: int
    n_trials: int
    processes: TrialProcesses

    def launch(self, run: int, body: dict) -> tuple[Path | None, str]:
        seed = trial_seed(self.base_seed, run)
        outcome = run_trial_process(
            run, None, body, self.spec_name, self.scratch, False, self.relay, seed, self.processes
        )
        return outcome.folder, outcome.error

    def run(
        self, outcomes: list[TrialOutcome], top: int, workers: int, say: Callable[[str], None]
    ) -> dict:
        """Re-evaluate the ``top`` best finished trials; the record of the trials' and the
        evaluations' sessions and seeds (``info/{name}_evaluations.json``)."""
        scored = [o for o in outcomes if o.state == "complete" and math.isfinite(o.score)]
        best = sorted(scored, key=lambda o: o.score, reverse=True)[:top]
        if best:
            say(
                f"re-evaluating the {len(best)} best trials"
                f" ({', '.join(str(o.index) for o in best)}) on fresh seeds, every session"
            )
        ranked = [(o.index, trial_body(self.spec, o.values, single_session=False)) for o in best]
        evaluations = reevaluate(ranked, self.n_trials, self.launch, say, workers)
        return {
            "reevaluate_top": top,
            "base_seed": self.base_seed,
            "trials": {str(o.index): {"sessions": o.sessions, "seeds": o.seeds} for o in outcomes},
            "evaluations": [e.as_dict() for e in evaluations],
        }


def _announce(
    log: SearchLog, plan: SearchPlan, spec_file: str, spec_name: str, prepath: str, workers: int
) -> None:
    log.say(running_message(spec_file, spec_name, "search", 0, prepath))
    for warning in plan.warnings:
        log.say(warning, level="WARNING")
    if plan.single_session:
        log.say(
            f"ASHA scheduler enabled: overriding max_session from {plan.max_session} to 1"
            " (ASHA requires single-session trials for early termination)"
        )
    space = plan.space
    log.say(
        f"Optuna search: {plan.n_trials} trials over {len(space.dimensions)} dimensions"
        f" ({', '.join(space.paths)}), total_reward_ma (max), {max(1, workers)} at once"
    )


def _new_study(plan: SearchPlan, seed: int | None) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=plan.pruner()
    )


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
    then train the ``reevaluate_top`` best trials again on fresh seeds (``reevaluate.py``)."""
    where = f"{spec_file}: {spec_name}"
    plan = SearchPlan.read(spec, where)
    log = SearchLog(stream or sys.stdout)
    folder, when, reservation = reserve_folder(Path(data_root), run_name)
    root = Path(data_root) / folder
    processes = TrialProcesses()
    try:
        _announce(log, plan, spec_file, spec_name, f"data/{folder}/{run_name}", workers)
        base_seed = int(time.time()) if seed is None else seed
        tally = StudyTally(_new_study(plan, seed), plan.space)
        # A signal (SIGTERM, SIGHUP, SIGINT) first stops the running trials, which the exit it
        # brings would wait for; on the way out, what still runs is stopped before its folder
        # goes. A stopped search leaves no folder: only a finished one writes it.
        with (
            stop_first(processes.stop),
            tempfile.TemporaryDirectory(prefix=".search-", dir=data_root) as scratch,
            processes,
        ):
            trials = TrialRunner(
                spec, spec_name, plan, tally, log, base_seed, Path(scratch), processes
            )
            outcomes = trials.run_all(workers)
            if not any(o.state == "complete" for o in outcomes):
                errors = "; ".join(o.error or o.state for o in outcomes)
                raise BenchError(f"{where}: search: no trial finished ({errors})")
            again = Reevaluation(
                spec, spec_name, Path(scratch), log.relay, base_seed, plan.n_trials, processes
            )
            record = again.run(outcomes, reevaluate_top, workers, log.say)
            write_search_folder(root, spec, run_name, folder, when, plan.space, outcomes)
            write_slm_json(evaluations_path(root), record)
        reservation.unlink(missing_ok=True)
        for outcome in outcomes:
            metrics = {k: outcome.metrics.get(k, math.nan) for k in SCALAR_KEYS}
            log.say(trial_metrics_message(metrics))
        log.say("Experiment done")
        log.say(output_message(folder))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        reservation.unlink(missing_ok=True)
        raise
    return root
