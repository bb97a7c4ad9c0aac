"""The statistics stages: a cell's ``stats.json`` from its run folder, and the table's summary and
performance-profile plot from every cell's ``stats.json`` (the math is in
``slm_bench.statistics.stats``)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from slm_bench.atomic import write_json
from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import RunLayout, load_json, read_run_folder
from slm_bench.formats.session_scores import run_session_mas
from slm_bench.formats.settings import parse_target
from slm_bench.statistics.never_learned import never_learned, note_of
from slm_bench.statistics.stats import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    normalise,
    performance_profile,
    summarise,
)

BOOTSTRAP_NOTE = {
    "method": "percentile CI, stratified bootstrap (rliable's); IQM = 25% trimmed mean",
    "confidence": CONFIDENCE,
    "reps": BOOTSTRAP_REPS,
    "seed": BOOTSTRAP_SEED,
}


def cell_stats(
    cell_key: str,
    env_id: str,
    label: str,
    target_text: str | None,
    random_return: float | None,
    run_folder: Path,
) -> dict:
    """A cell's statistics: each session's final MA, mean +- std, IQM and 95% CIs, normalised,
    and the sessions that never learned (the MA stays SLM-Lab's mean; the flag explains it)."""
    run = read_run_folder(run_folder)
    layout = RunLayout(run.path, run.prefix)
    mas, sources, trial_ma = run_session_mas(run, layout)
    finite = [v for v in mas if math.isfinite(v)]
    if not finite:
        raise BenchError(f"{run_folder}: no session has a finite total_reward_ma")
    target = parse_target(target_text) if target_text else None
    stuck = never_learned(layout, mas, env_id, target, random_return)
    raw = summarise([finite])
    normalised = None
    if target is not None:  # every finite score has a normalised value then
        scores = [n for v in finite if (n := normalise(v, target, random_return)) is not None]
        normalised = {**summarise([scores]).as_dict(), "sessions": scores}
    return {
        "cell": cell_key,
        "env_id": env_id,
        "algorithm": label,
        "data_folder": Path(run_folder).name,
        "sessions": [
            {"session": s, "final_ma": v, "source": src}
            for s, (v, src) in enumerate(zip(mas, sources, strict=True))
        ],
        "trial_ma": trial_ma,
        **raw.as_dict(),
        "target": target.text if target else None,
        "random_return": random_return,
        "normalised": normalised,
        "never_learned": stuck,
        "bootstrap": BOOTSTRAP_NOTE,
    }


def write_cell_stats(
    cell, random_return: float | None, hf_data_dir: Path, out_json: Path, log
) -> None:
    from slm_bench.steps import pulled_folder

    folder = pulled_folder(Path(hf_data_dir))
    stats = cell_stats(cell.key, cell.env_id, cell.label, cell.target, random_return, folder)
    if stats["trial_ma"] is not None and not math.isclose(
        stats["mean"], stats["trial_ma"], rel_tol=1e-4, abs_tol=1e-3
    ):
        log(
            f"warning: {cell.key}: mean of session MAs {stats['mean']:.4f} differs from the "
            f"trial's total_reward_ma {stats['trial_ma']:.4f}"
        )
    flagged = stats["never_learned"]
    if flagged["note"]:
        sessions = ", ".join(
            f"s{s['session']}: {'; '.join(s['reasons'])}" for s in flagged["sessions"]
        )
        log(f"warning: {cell.key}: {flagged['note']} ({sessions})")
    write_json(out_json, stats)


# -- the table --------------------------------------------------------------------------------


def _aggregate(strata: list[list[float]]) -> dict | None:
    return summarise(strata).as_dict() | {"tasks": len(strata)} if strata else None


def table_summary(stats_list: list[dict], phases: dict[str, str]) -> dict:
    """Aggregate IQM (with CI) of normalised scores: over the whole table, per env (its cells
    are the strata), per phase, and per algorithm across envs (rliable's view: envs are tasks).

    ``phases`` maps env id -> phase title. Cells without a target have no normalised score and
    are listed under ``unnormalised``.
    """
    by_env: dict[str, list[list[float]]] = defaultdict(list)
    by_phase: dict[str, list[list[float]]] = defaultdict(list)
    by_algo: dict[str, list[list[float]]] = defaultdict(list)
    every: list[list[float]] = []
    unnormalised = []
    for stats in stats_list:
        normalised = stats.get("normalised")
        if not normalised:
            unnormalised.append(stats["cell"])
            continue
        sessions = normalised["sessions"]
        every.append(sessions)
        by_env[stats["env_id"]].append(sessions)
        by_phase[phases.get(stats["env_id"]) or "no phase"].append(sessions)
        by_algo[stats["algorithm"]].append(sessions)
    return {
        "score": "normalised: 0 = random policy, 1 = target",
        "table": _aggregate(every),
        "by_phase": {k: _aggregate(v) for k, v in by_phase.items()},
        "by_env": {k: _aggregate(v) for k, v in by_env.items()},
        "by_algorithm": {k: _aggregate(v) for k, v in by_algo.items()},
        "cells": {
            s["cell"]: {
                "env_id": s["env_id"],
                "algorithm": s["algorithm"],
                "ma": s["mean"],
                "iqm": s["iqm"],
                "iqm_ci": s["iqm_ci"],
                "normalised_iqm": (s.get("normalised") or {}).get("iqm"),
                "never_learned": note_of(s.get("never_learned")),
            }
            for s in stats_list
        },
        "unnormalised": unnormalised,
        "bootstrap": BOOTSTRAP_NOTE,
    }


def plot_performance_profile(stats_list: list[dict], out_png: Path) -> None:
    """One curve per algorithm: fraction of sessions with normalised score > tau, over its envs,
    with the 95% stratified-bootstrap band (rliable's performance profile)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_algo: dict[str, list[list[float]]] = defaultdict(list)
    for stats in stats_list:
        if stats.get("normalised"):
            by_algo[stats["algorithm"]].append(stats["normalised"]["sessions"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    if by_algo:
        top = max(1.2, max(max(max(s) for s in strata) for strata in by_algo.values()) + 0.05)
        low = min(0.0, min(min(min(s) for s in strata) for strata in by_algo.values()) - 0.05)
        taus = np.linspace(low, top, 121)
        for algo, strata in sorted(by_algo.items()):
            point, lo, hi = performance_profile(strata, taus)
            (line,) = ax.plot(taus, point, label=f"{algo} ({len(strata)} env(s))")
            ax.fill_between(taus, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no cell has a target", ha="center", va="center")
    ax.set_xlabel("normalised score tau (0 = random policy, 1 = target)")
    ax.set_ylabel("fraction of sessions with score > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Performance profile (95% stratified-bootstrap band)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out_png)


def write_table_stats(
    stats_paths: list[Path], phases: dict[str, str], out_json: Path, out_png: Path
) -> None:
    stats_list = [load_json(path) for path in stats_paths]
    write_json(out_json, table_summary(stats_list, phases))
    plot_performance_profile(stats_list, out_png)
