"""A search folder (SLM-Lab's or the embedded runner's) read into trials.csv and best.json.

Both runners write ``info/{name}_experiment_df.csv``: a ``trial`` column, the searched keys
(sorted), then the trial metrics. That file is the source, so a search by the real SLM-Lab and
one by the embedded runner give the same outputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from slm_bench.errors import BenchError
from slm_bench.metrics import SCALAR_KEYS
from slm_bench.run_folder import folder_prefix, load_json
from slm_bench.search.space import SearchSpace, rule_budget


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


def best_trial(
    trials: pd.DataFrame, space: SearchSpace, planned: int, spec_file: str, spec_name: str
) -> dict:
    """The best trial by total_reward_ma (the benchmark score) and the budget spent."""
    scores = pd.to_numeric(trials["total_reward_ma"], errors="coerce")
    finite = scores[scores.map(lambda v: math.isfinite(v))]
    if finite.empty:
        raise BenchError(f"{spec_file}: {spec_name}: search: no trial has a finite total_reward_ma")
    row = trials.loc[finite.idxmax()]
    values = {path: _plain(row[path]) for path in space.paths}
    return {
        "spec_file": spec_file,
        "spec_name": spec_name,
        "trial": int(row["trial"]),
        "values": values,
        "total_reward_ma": float(row["total_reward_ma"]),
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


def _plain(value: object) -> object:
    """numpy scalars -> JSON-able Python values; whole floats of int columns stay ints."""
    if hasattr(value, "item"):
        value = value.item()
    return value


def trial_metrics_of(folder: Path, trial: int) -> dict:
    """A trial's scalar metrics from the search folder (used to cross-check experiment_df)."""
    name = folder_prefix(folder)
    return load_json(folder / "info" / f"{name}_t{trial}_trial_metrics_scalar.json")
