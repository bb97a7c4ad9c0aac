"""Per-environment comparison plots, drawn as ``slm-lab plot`` draws them.

One curve per run folder: each session's ``mean_returns`` smoothed by a 100-checkpoint rolling
mean, then the mean over sessions with a +-1 std band, against session 0's frames.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from slm_bench.errors import BenchError
from slm_bench.run_folder import load_json
from slm_bench.spec import ALGORITHM_ORDER, algorithm_label, algorithm_rank

ROLLING_WINDOW = 100
FIGURE_INCHES, FIGURE_DPI = 10, 100  # 1000 x 1000 pixels

# One fixed colour per algorithm so a colour means the same algorithm on every plot.
ALGORITHM_COLORS: dict[str, str] = dict(
    zip(
        ALGORITHM_ORDER,
        ("#8c564b", "#e377c2", "#1f77b4", "#17becf", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd"),
        strict=True,
    )
)
_UNIT_SPEC = re.compile(r"_t\d+(_s\d+)?_spec\.json$")
_OTHER_COLORS = ("#7f7f7f", "#bcbd22", "#393b79", "#637939")


@dataclass(frozen=True)
class Curve:
    """One run's smoothed curve: mean over sessions and its std, against frames."""

    folder: Path
    label: str
    max_frame: int | float | None
    frames: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def _read_json(path: Path) -> dict:
    data = load_json(path)  # SLM-Lab's JSON, bare NaN/Infinity included
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a JSON object")
    return data


def _run_spec(folder: Path) -> dict:
    # The experiment-level spec, not the trial/session copies ({name}_t0_spec.json, ...).
    specs = sorted(p for p in folder.glob("*_spec.json") if not _UNIT_SPEC.search(p.name))
    if not specs:
        raise BenchError(f"{folder}: no {{name}}_spec.json in the run folder")
    return _read_json(specs[0])


def _load_curve(folder: Path) -> Curve:
    folder = Path(folder)
    metrics_files = sorted(folder.glob("info/*t0_trial_metrics.json"))
    if not metrics_files:
        raise BenchError(f"{folder}: no info/*t0_trial_metrics.json in the run folder")
    metrics_path = metrics_files[0]
    local = _read_json(metrics_path).get("local")
    if not isinstance(local, dict):
        raise BenchError(f"{metrics_path}: local: expected an object with mean_returns and frames")
    sessions = local.get("mean_returns")
    frames = local.get("frames")
    if (
        not isinstance(sessions, list)
        or not sessions
        or not all(isinstance(s, list) and s for s in sessions)
    ):
        raise BenchError(
            f"{metrics_path}: local.mean_returns: expected non-empty per-session lists"
        )
    if not isinstance(frames, list) or not frames:
        raise BenchError(f"{metrics_path}: local.frames: expected a non-empty list")
    length = min(len(frames), *(len(s) for s in sessions))
    smoothed = np.array(
        [
            pd.Series(s[:length], dtype=float).rolling(ROLLING_WINDOW, min_periods=1).mean()
            for s in sessions
        ]
    )
    spec = _run_spec(folder)
    return Curve(
        folder=folder,
        label=algorithm_label(spec),
        max_frame=(spec.get("env") or {}).get("max_frame"),
        frames=np.asarray(frames[:length], dtype=float),
        mean=smoothed.mean(axis=0),
        std=smoothed.std(axis=0),
    )


def _check_same_max_frame(curves: list[Curve]) -> None:
    first = curves[0]
    for curve in curves[1:]:
        if curve.max_frame != first.max_frame:
            raise BenchError(
                f"runs to plot disagree on env.max_frame: {first.folder} has {first.max_frame}, "
                f"{curve.folder} has {curve.max_frame}; plotted runs must share one max_frame"
            )


def load_curves(run_folders: list[Path]) -> list[Curve]:
    """Each folder's curve, in ALGORITHM_ORDER (ties keep input order); max_frame must agree."""
    curves = [_load_curve(Path(folder)) for folder in run_folders]
    if curves:
        _check_same_max_frame(curves)
    return sorted(curves, key=lambda curve: algorithm_rank(curve.label))


def _color(label: str, others: dict[str, str]) -> str:
    if label in ALGORITHM_COLORS:
        return ALGORITHM_COLORS[label]
    return others.setdefault(label, _OTHER_COLORS[len(others) % len(_OTHER_COLORS)])


def draw_curves(curves: list[Curve], title: str) -> Figure:
    """A square 1000x1000 figure: one mean line and +-1 std band per curve, legend below."""
    figure = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=FIGURE_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    others: dict[str, str] = {}
    for curve in curves:
        color = _color(curve.label, others)
        axes.plot(curve.frames, curve.mean, color=color, label=curve.label, linewidth=1.5)
        axes.fill_between(
            curve.frames, curve.mean - curve.std, curve.mean + curve.std, color=color, alpha=0.2
        )
    low, high = axes.get_ylim()
    axes.set_ylim(min(low, 0.0), max(high, 0.0))
    axes.set_title(title)
    axes.set_xlabel("frames")
    axes.set_ylabel("mean_returns_ma")
    axes.grid(alpha=0.3)
    axes.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(curves), 4), frameon=False
    )
    figure.subplots_adjust(left=0.1, right=0.95, top=0.94, bottom=0.17)
    return figure


def plot_env(env_id: str, run_folders: list[Path], out_png: Path, title: str | None = None) -> None:
    """Draw one env's runs into a square 1000x1000 PNG at ``out_png``, written atomically."""
    if not run_folders:
        raise BenchError(f"plot {env_id}: no run folders to plot")
    figure = draw_curves(load_curves(run_folders), title or env_id)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_png.name}.", suffix=".tmp", dir=out_png.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=FIGURE_DPI)
        os.replace(tmp, out_png)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
