"""SLM-Lab's metric definitions (session and trial metrics) and the keys they are reported under."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

# Trial scalar keys, in SLM-Lab's order (the order of the `trial_metrics:` log line too).
SCALAR_KEYS = (
    "frame",
    "total_reward_ma",
    "strength",
    "max_strength",
    "final_strength",
    "sample_efficiency",
    "training_efficiency",
    "stability",
    "consistency",
)

# The formulas below follow SLM-Lab's slm_lab/experiment/analysis.py (calc_strength,
# calc_efficiency, calc_stability, calc_consistency, calc_session_metrics, calc_trial_metrics)
# and slm_lab/lib/util.py (calc_srs_mean_std), including their pandas semantics: index-aligned
# division, NaN-skipping means and sample (ddof=1) standard deviations.

# SLM-Lab's viz.PLOT_MA_WINDOW: the moving-average window over checkpoints.
MA_WINDOW = 100

SESSION_SCALAR_KEYS = SCALAR_KEYS[1:-1]  # a session has no `frame` and no `consistency`


def calc_strength(mean_returns: pd.Series, random_return: float) -> tuple[float, pd.Series]:
    """str = mean_i (R_i - R_rand); local strengths are the per-checkpoint terms."""
    local_strs = mean_returns - random_return
    return float(local_strs.mean()), local_strs


def calc_efficiency(local_strs: pd.Series, ts: pd.Series) -> tuple[float, pd.Series]:
    """e = sum_i(str_i / t_i) / sum_i(str_i); points with t_i == 0 (inf ratios) are dropped."""
    ratios = (local_strs / ts).replace([np.inf, -np.inf], np.nan).dropna()
    eff = ratios.sum() / local_strs.sum()
    local_effs = ratios.cumsum() / local_strs.cumsum()
    return float(eff), local_effs


def calc_stability(local_strs: pd.Series) -> tuple[float, pd.Series]:
    """sta = 1 - |sum_i min(str_{i+1} - str_i, 0) / sum_i str_i| over i < N-1."""
    drops = local_strs.diff().shift(-1).iloc[:-1].clip(upper=0.0)
    denoms = local_strs.iloc[:-1]
    local_stas = 1 - (drops / denoms).abs()
    sta = 1 - np.abs(drops.sum() / denoms.sum())
    return float(sta), local_stas


def mean_std(series_list: Sequence[pd.Series]) -> tuple[pd.Series, pd.Series]:
    """SLM-Lab's ``util.calc_srs_mean_std``: per-checkpoint mean and sample std (pandas, ddof=1)
    across sessions, cut to the shortest session."""
    min_len = min(len(s) for s in series_list)
    cut = [s.iloc[:min_len].reset_index(drop=True) for s in series_list]
    frame = pd.DataFrame(dict(enumerate(cut)))
    return frame.mean(axis=1), frame.std(axis=1)


def calc_consistency(local_strs_list: Sequence[pd.Series]) -> tuple[float, pd.Series]:
    """con = 1 - sum_i 2 std_j(str_ij) / sum_i mean_j(str_ij) (j over sessions)."""
    mean_strs, std_strs = mean_std(local_strs_list)
    local_cons = 1 - 2 * std_strs / mean_strs
    con = 1 - 2 * std_strs.sum() / mean_strs.sum()
    return float(con), local_cons


def _as_series(values: object) -> pd.Series:
    return values if isinstance(values, pd.Series) else pd.Series(values, dtype=float)


def _to_list(series: pd.Series) -> list[float]:
    return [float(v) for v in series.to_numpy(dtype=float)]


def _to_float(value: float | None) -> float:
    return float(value) if value is not None else float("nan")


def session_metrics(session_df: pd.DataFrame, random_return: float) -> dict:
    """SLM-Lab's session metrics from a session_df (``total_reward``, ``frame``, ``opt_step``).

    ``random_return`` is the random-policy mean return of the env (0 when unknown, as SLM-Lab
    does). Returns ``{"scalar": {...}, "local": {...}}`` with JSON-ready lists in ``local``.
    """
    mean_returns = session_df["total_reward"].astype(float).reset_index(drop=True)
    frames = session_df["frame"].astype(float).reset_index(drop=True)
    opt_steps = session_df["opt_step"].astype(float).reset_index(drop=True)
    if len(mean_returns) == 0:
        total_reward_ma = strength = max_str = final_str = float("nan")
        local_strs = pd.Series(dtype=float)
    else:
        window = min(len(mean_returns), MA_WINDOW)
        total_reward_ma = float(mean_returns.iloc[-window:].mean())
        strength, local_strs = calc_strength(mean_returns, random_return)
        max_str, final_str = float(local_strs.max()), float(local_strs.iloc[-1])
    with warnings.catch_warnings():  # all-NaN slices are expected early in training
        warnings.simplefilter("ignore")
        sample_eff, local_sample_effs = calc_efficiency(local_strs, frames)
        train_eff, local_train_effs = calc_efficiency(local_strs, opt_steps)
        sta, local_stas = calc_stability(local_strs)
    scalar = {
        "total_reward_ma": total_reward_ma,
        "strength": strength,
        "max_strength": max_str,
        "final_strength": final_str,
        "sample_efficiency": sample_eff,
        "training_efficiency": train_eff,
        "stability": sta,
    }
    local = {
        "mean_returns": _to_list(mean_returns),
        "strengths": _to_list(local_strs),
        "sample_efficiencies": _to_list(local_sample_effs),
        "training_efficiencies": _to_list(local_train_effs),
        "stabilities": _to_list(local_stas),
        "frames": _to_list(frames),
        "opt_steps": _to_list(opt_steps),
    }
    return {"scalar": scalar, "local": local}


def trial_metrics(session_metrics_list: list[dict]) -> dict:
    """SLM-Lab's trial metrics: session scalars averaged, plus consistency across sessions.

    ``frame`` is session 0's last frame; ``frames``/``opt_steps`` in ``local`` are session 0's.
    Accepts session metrics as returned by :func:`session_metrics` or read back from JSON.
    """
    if not session_metrics_list:
        raise ValueError("trial_metrics needs at least one session's metrics")
    mean_scalar = pd.DataFrame([sm["scalar"] for sm in session_metrics_list]).mean()

    def series_list(key: str) -> list[pd.Series]:
        return [_as_series(sm["local"][key]).astype(float) for sm in session_metrics_list]

    local_strs_list = series_list("strengths")
    frames = _as_series(session_metrics_list[0]["local"]["frames"]).astype(float)
    opt_steps = _as_series(session_metrics_list[0]["local"]["opt_steps"]).astype(float)
    with warnings.catch_warnings():  # one session gives a NaN std, hence NaN consistency
        warnings.simplefilter("ignore")
        con, local_cons = calc_consistency(local_strs_list)
    scalar = {
        "frame": float(frames.iloc[-1]) if len(frames) else 0.0,
        **{key: _to_float(mean_scalar.get(key)) for key in SESSION_SCALAR_KEYS},
        "consistency": con,
    }
    per_session_keys = (
        "mean_returns",
        "strengths",
        "sample_efficiencies",
        "training_efficiencies",
        "stabilities",
    )
    local = {
        **{key: [_to_list(s) for s in series_list(key)] for key in per_session_keys},
        "consistencies": _to_list(local_cons),
        "frames": _to_list(frames),
        "opt_steps": _to_list(opt_steps),
    }
    return {"scalar": {key: scalar[key] for key in SCALAR_KEYS}, "local": local}
