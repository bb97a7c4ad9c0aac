"""A run folder's sessions' final MAs, as SLM-Lab scores them (eval metrics first, then train
metrics, then the session CSV), with the file each came from and the trial's own MA; and the
seeds the sessions ran with, wherever the run recorded them."""

from __future__ import annotations

import ast
import re
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

_SEEDS_LINE = re.compile(r"\bseeds (\[[-0-9, ]*\])")  # the embedded runner's trial-log line


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


def session_seeds(run_folder: Path | None) -> dict:
    """Every session's seed, from wherever the run recorded it, and where it came from.

    SLM-Lab sets ``meta.random_seed`` per session (``1e5 * trial + 1e3 * session + time``) but
    saves only the trial's spec, where it is null, so a real SLM-Lab run usually has none. Read, in
    order: per-session specs (``{prefix}_t0_s{s}_spec.json``), the trial spec's
    ``meta.random_seed``, then the embedded runner's ``seeds [...]`` trial-log line.
    """
    unknown = {"seeds": None, "source": "not recorded in the run folder"}
    if run_folder is None:
        return unknown
    try:
        run = read_run_folder(run_folder)
    except BenchError:
        return unknown
    layout = RunLayout(run.path, run.prefix)
    meta = run.spec.get("meta") or {}
    count = sessions if isinstance(sessions := meta.get("max_session"), int) else 0
    per_session = []
    for s in range(count):
        path = next(run.path.rglob(f"{layout.session_prefix(s)}_spec.json"), None)
        seed = (load_json(path).get("meta") or {}).get("random_seed") if path else None
        per_session.append(seed)
    if per_session and all(isinstance(seed, int) for seed in per_session):
        return {"seeds": per_session, "source": "session specs meta.random_seed"}
    if isinstance(meta.get("random_seed"), int):
        return {"seeds": [meta["random_seed"]], "source": "trial spec meta.random_seed"}
    if layout.trial_log.is_file():
        match = _SEEDS_LINE.search(layout.trial_log.read_text(errors="replace"))
        if match:
            return {"seeds": ast.literal_eval(match.group(1)), "source": "trial log"}
    return unknown
