"""The embedded search's folder, laid out as SLM-Lab's: ``{name}_spec.json`` with ``meta.trial ==
-1`` and the search block, the trials' folders as ``t0..tN``, ``info/{name}_experiment_df.csv``
and ``info/{name}_trial_data_dict.json``, so SLM-Lab's retro-analysis could read it."""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from slm_bench.formats.metrics import SCALAR_KEYS
from slm_bench.formats.run_folder import FOLDER_TS_FORMAT, folder_prefix, load_json
from slm_bench.runners.embedded.output import write_slm_json
from slm_bench.runners.embedded.search_trial import TrialOutcome
from slm_bench.search.space import SearchSpace


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


def write_search_folder(
    root: Path,
    spec: Mapping,
    run_name: str,
    folder: str,
    when: datetime,
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
