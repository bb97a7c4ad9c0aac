"""A run folder's sessions' final MAs, as SLM-Lab scores them (eval metrics first, then train
metrics, then the session CSV), with the file each came from and the trial's own MA."""

from __future__ import annotations

from pathlib import Path
from typing import TypeGuard

from slm_bench.errors import BenchError
from slm_bench.formats.metrics import MA_WINDOW
from slm_bench.formats.run_folder import (
    RunFolder,
    RunLayout,
    load_json,
    read_run_folder,
    trial_score,
)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def session_final_ma(layout: RunLayout, s: int) -> tuple[float, str]:
    """Session ``s``'s final MA and the file it came from.

    SLM-Lab's trial score averages the sessions' *eval* metrics, so those come first; then the
    train metrics; then the session CSV (mean of the last 100 checkpoints' ``total_reward``,
    SLM-Lab's moving average).
    """
    for mode in ("eval", "train"):
        scalar_path = layout.session_metrics_scalar_json(s, mode)
        if scalar_path.is_file():
            value = load_json(scalar_path).get("total_reward_ma")
            if _is_number(value):
                return float(value), scalar_path.name
        full_path = layout.session_metrics_json(s, mode)
        if full_path.is_file():
            value = (load_json(full_path).get("scalar") or {}).get("total_reward_ma")
            if _is_number(value):
                return float(value), full_path.name
    for mode in ("eval", "train"):
        csv = layout.session_df_csv(s, mode)
        if csv.is_file():
            import pandas as pd

            returns = pd.read_csv(csv)["total_reward"].astype(float)
            if len(returns):
                return float(returns.iloc[-MA_WINDOW:].mean()), csv.name
    raise BenchError(
        f"{layout.info_dir}: session {s}: no total_reward_ma (expected "
        f"{layout.session_metrics_scalar_json(s, 'eval').name} or a session CSV)"
    )


def session_mas(run_folder: Path) -> tuple[list[float], list[str], float | None]:
    """Every session's final MA (sessions 0..max_session-1), their files, and the trial MA."""
    run = read_run_folder(run_folder)
    return run_session_mas(run, RunLayout(run.path, run.prefix))


def run_session_mas(
    run: RunFolder, layout: RunLayout
) -> tuple[list[float], list[str], float | None]:
    count = (run.spec.get("meta") or {}).get("max_session")
    if not isinstance(count, int) or count < 1:
        raise BenchError(f"{layout.spec_json}: meta.max_session: expected a positive integer")
    values, sources = [], []
    for s in range(count):
        value, source = session_final_ma(layout, s)
        values.append(value)
        sources.append(source)
    trial = trial_score(run) if run.trial_metrics is not None else None
    return values, sources, trial
