"""A search folder (SLM-Lab's or the embedded runner's) read into trials.csv and best.json.

Both runners write ``info/{name}_experiment_df.csv``: a ``trial`` column, the searched keys
(sorted), then the trial metrics. That file is the source, so a search by the real SLM-Lab and
one by the embedded runner give the same trials.

The pick. The embedded runner also writes ``info/{name}_evaluations.json``: its best trials trained
again with every session on fresh seeds (``runners/embedded/reevaluate.py``). The chosen trial is
the one whose fresh sessions have the highest mean final MA, ties going to the higher lower end of
the 95% bootstrap CI of that mean. The mean because it is the number the table will print (SLM-Lab's
MA is the mean over sessions), so a session left at the random policy costs a candidate
exactly what it would cost the row; only fresh sessions, because the trial's own draw is what put
it in the top (counting it would favour the luckiest draw again). The lower CI end alone would rank
by spread as much as by level, and with 4 sessions its bootstrap is coarse. A search folder without
evaluations (SLM-Lab's own search, or ``search_reevaluate_top: 0``) is picked as SLM-Lab picks: the
single best trial MA, and best.json says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from slm_bench.errors import BenchError
from slm_bench.formats.metrics import SCALAR_KEYS
from slm_bench.formats.run_folder import folder_prefix, load_json
from slm_bench.search.space import SearchSpace, rule_budget
from slm_bench.statistics.stats import CONFIDENCE, percentile_ci, pooled_mean

EVALUATIONS_SUFFIX = "_evaluations.json"


def evaluations_path(search_folder: Path) -> Path:
    """Where a search folder keeps its fresh-seed evaluations (the embedded runner writes it)."""
    return Path(search_folder) / "info" / f"{folder_prefix(search_folder)}{EVALUATIONS_SUFFIX}"


def read_trials(folder: Path, space: SearchSpace) -> pd.DataFrame:
    """One row per trial (by index): the sampled values, the trial metrics, the trial's prefix."""
    name = folder_prefix(folder)
    csv = folder / "info" / f"{name}_experiment_df.csv"
    if not csv.is_file():
        raise BenchError(f"{folder}: not a search folder (no info/{name}_experiment_df.csv)")
    try:
        df = pd.read_csv(csv)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise BenchError(f"{csv}: unreadable experiment_df ({error})") from None
    missing = [c for c in ("trial", *space.paths, "total_reward_ma") if c not in df.columns]
    if missing:
        raise BenchError(f"{csv}: missing columns {', '.join(missing)}")
    columns = ["trial", *space.paths, *[k for k in SCALAR_KEYS if k in df.columns]]
    trials = df[columns].sort_values("trial").reset_index(drop=True)
    trials["folder"] = [f"data/{folder.name}/{name}_t{int(t)}" for t in trials["trial"]]
    return trials


def read_evaluations(folder: Path) -> dict | None:
    """The search's fresh-seed evaluations (None for a folder without them: SLM-Lab's)."""
    path = evaluations_path(folder)
    if not path.is_file():
        return None
    record = load_json(path)
    if not isinstance(record, dict) or not isinstance(record.get("evaluations"), list):
        raise BenchError(f"{path}: expected an object with an 'evaluations' list")
    return record


def robust_choice(evaluations: list[dict]) -> dict | None:
    """The trial whose fresh sessions (all its evaluations together) have the highest mean
    final MA, ties to the higher lower CI end; None when no evaluation has a finite session."""
    pooled: dict[int, list[float]] = {}
    for evaluation in evaluations:
        sessions = [float(v) for v in evaluation.get("sessions") or [] if math.isfinite(v)]
        if sessions:
            pooled.setdefault(int(evaluation["trial"]), []).extend(sessions)
    if not pooled:
        return None
    scores: list[dict[str, Any]] = []
    for trial, sessions in pooled.items():
        low, high = percentile_ci([sessions], pooled_mean)
        mean = sum(sessions) / len(sessions)
        scores.append({"trial": trial, "mean": mean, "ci": [low, high], "n": len(sessions)})
    return max(scores, key=lambda s: (s["mean"], s["ci"][0]))


def best_trial(
    trials: pd.DataFrame,
    space: SearchSpace,
    planned: int,
    spec_file: str,
    spec_name: str,
    evaluations: dict | None = None,
) -> dict:
    """The chosen trial (by its fresh-seed evaluations when there are any, else by its own
    total_reward_ma), the evidence, and the budget spent."""
    scores = pd.to_numeric(trials["total_reward_ma"], errors="coerce")
    finite = scores[scores.map(lambda v: math.isfinite(v))]
    if finite.empty:
        raise BenchError(f"{spec_file}: {spec_name}: search: no trial has a finite total_reward_ma")
    # the first trial with the highest finite score (positions: pandas types labels as Hashable)
    best_draw = int(trials.loc[finite.index, "trial"].to_numpy()[finite.to_numpy().argmax()])
    chosen = robust_choice((evaluations or {}).get("evaluations") or [])
    trial = chosen["trial"] if chosen else best_draw
    row = trials.loc[trials["trial"] == trial].iloc[0]
    values = {path: _plain(row[path]) for path in space.paths}
    return {
        "spec_file": spec_file,
        "spec_name": spec_name,
        "trial": trial,
        "values": values,
        "total_reward_ma": float(row["total_reward_ma"]),
        "chosen_by": CHOSEN_BY_FRESH if chosen else CHOSEN_BY_DRAW,
        "score": (
            {"total_reward_ma": chosen["mean"], "ci": chosen["ci"], "n": chosen["n"]}
            | {"confidence": CONFIDENCE, "of": "fresh-seed sessions' final MAs"}
            if chosen
            else None
        ),
        "best_single_draw": {"trial": best_draw, "total_reward_ma": float(finite.max())},
        "evaluations": (evaluations or {}).get("evaluations", []),
        "seeds": _seeds(evaluations),
        "metrics": {k: _plain(row[k]) for k in SCALAR_KEYS if k in trials.columns},
        "folder": row["folder"],
        "budget": {
            "dimensions": len(space.dimensions),
            "trials_planned": planned,
            "trials_run": len(trials),
            "trials_with_score": int(len(finite)),
            "rule_budget": rule_budget(len(space.dimensions)),
        },
    }


CHOSEN_BY_FRESH = "highest mean final MA over the fresh-seed sessions of its re-evaluations"
CHOSEN_BY_DRAW = "highest trial total_reward_ma (single draw: the search has no re-evaluations)"


def _seeds(evaluations: dict | None) -> dict:
    """Every seed the search used: per trial, and per re-evaluation (never one of the trials')."""
    if not evaluations:
        return {"trials": None, "evaluations": None, "note": "not recorded by this search"}
    return {
        "base": evaluations.get("base_seed"),
        "trials": {k: v.get("seeds") for k, v in (evaluations.get("trials") or {}).items()},
        "evaluations": [e.get("seeds") for e in evaluations["evaluations"]],
    }


def _plain(value: object) -> object:
    """numpy scalars -> JSON-able Python values (a whole float stays a float: spec.patch compares
    numbers by value, so a float of an int key is not written)."""
    if hasattr(value, "item"):
        value = value.item()
    return value
