"""Per-environment comparison plots, drawn as ``slm-lab plot`` draws them.

One curve per run folder (SLM-Lab's ``viz.plot_multi_trial`` with ``ma=True``): each session's
``mean_returns`` smoothed by a 100-checkpoint rolling mean, then the mean over sessions with a
+-1 sample-std band (pandas, ddof=1), against session 0's frames; SLM-Lab's fixed colour per
algorithm; x axis from 0 and a y axis that always includes 0 (plotly's ``fill='tozerox'`` and
``rangemode='tozero'``). Only complete runs are plotted: every session up to ``max_frame``.
"""

from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from slm_bench.atomic import open_atomic
from slm_bench.errors import BenchError
from slm_bench.formats.metrics import MA_WINDOW, mean_std
from slm_bench.formats.naming import algorithm_label, algorithm_rank
from slm_bench.formats.run_folder import read_run_folder, require_complete, require_train

FIGURE_INCHES, FIGURE_DPI = 10, 100  # 1000 x 1000 pixels, as plotly's 500 x 500 at scale 2
LINE_WIDTH = 1.5  # plotly's width 1 at scale 2 is 2 px; 1.5 pt at 100 dpi is about 2 px
BAND_OPACITY = 0.15  # SLM-Lab's lower_opacity(color, 0.15) for the std envelope

# SLM-Lab's slm_lab/cli/plot.py ALGO_PALETTE: one fixed colour per algorithm lineage.
ALGORITHM_PALETTE: dict[str, str] = {
    "REINFORCE": "hsl(45, 80%, 55%)",
    "SARSA": "hsl(30, 60%, 45%)",
    "DQN": "hsl(175, 55%, 45%)",
    "DDQN+PER": "hsl(145, 50%, 45%)",
    "A2C": "hsl(220, 65%, 55%)",
    "PPO": "hsl(280, 55%, 55%)",
    "SAC": "hsl(350, 65%, 55%)",
    "CrossQ": "hsl(25, 85%, 55%)",
}
# Labels outside the palette (DDQN without PER, unknown names) take SLM-Lab's default palette,
# colorlover's qualitative Set2, by their position in the plot (viz.get_palette).
DEFAULT_PALETTE = (
    "rgb(102,194,165)",
    "rgb(252,141,98)",
    "rgb(141,160,203)",
    "rgb(231,138,195)",
    "rgb(166,216,84)",
    "rgb(255,217,47)",
    "rgb(229,196,148)",
    "rgb(179,179,179)",
)
_HSL = re.compile(r"^hsl\((\d+(?:\.\d+)?), *(\d+(?:\.\d+)?)%, *(\d+(?:\.\d+)?)%\)$")
_RGB = re.compile(r"^rgb\((\d+), *(\d+), *(\d+)\)$")


def css_to_hex(color: str) -> str:
    """``hsl(h, s%, l%)`` or ``rgb(r,g,b)`` (plotly's notations) as ``#rrggbb``."""
    if match := _HSL.match(color):
        h, s, lightness = (float(v) for v in match.groups())
        rgb = colorsys.hls_to_rgb(h / 360, lightness / 100, s / 100)
        channels = [round(c * 255) for c in rgb]
    elif match := _RGB.match(color):
        channels = [int(v) for v in match.groups()]
    else:
        raise ValueError(f"not an hsl() or rgb() colour: {color!r}")
    return "#" + "".join(f"{c:02x}" for c in channels)


def curve_colors(labels: list[str]) -> list[str]:
    """The colour of each curve, in plot order, as ``slm-lab plot`` picks it (``#rrggbb``)."""
    return [
        css_to_hex(ALGORITHM_PALETTE.get(label) or DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)])
        for i, label in enumerate(labels)
    ]


@dataclass(frozen=True)
class Curve:
    """One run's smoothed curve: mean over sessions and its sample std, against frames."""

    folder: Path
    metrics_path: Path
    label: str
    max_frame: int
    frames: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def _label(spec: dict) -> str:
    agent = spec.get("agent")
    if isinstance(agent, list) and agent:  # multi-agent specs: SLM-Lab labels the first agent
        spec = {**spec, "agent": agent[0]}
    return algorithm_label(spec)


def _load_curve(folder: Path) -> Curve:
    run = read_run_folder(folder)
    require_train(run)
    budget = require_complete(run)  # never a curve from a killed run's interim metrics
    assert run.trial_metrics is not None  # require_complete refuses a run without them
    source = run.shown(run.metrics_file)
    local = run.trial_metrics.get("local")
    if not isinstance(local, dict) or not local.get("mean_returns") or not local.get("frames"):
        raise BenchError(
            f"{source}: local.mean_returns and local.frames: expected the per-session series "
            "`slm-lab plot` draws"
        )
    sessions = local["mean_returns"]
    for s, returns in enumerate(sessions):
        bad = next((v for v in returns if math.isinf(v)), None)
        if bad is not None:
            raise BenchError(
                f"{source}: local.mean_returns[{s}] holds {bad}: expected finite returns"
            )
    smoothed = [
        pd.Series(returns, dtype=float).rolling(MA_WINDOW, min_periods=1).mean()
        for returns in sessions
    ]
    mean, std = mean_std(smoothed)
    return Curve(
        folder=Path(folder),
        metrics_path=run.metrics_file,
        label=_label(run.spec),
        max_frame=budget.max_frame,
        frames=np.asarray(local["frames"][: len(mean)], dtype=float),
        mean=mean.to_numpy(dtype=float),
        std=std.to_numpy(dtype=float),
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
    """Each complete folder's curve, in ``slm-lab plot``'s order (SLM-Lab's algorithm order,
    then label, then trial metrics path); every run must share one max_frame."""
    curves = [_load_curve(Path(folder)) for folder in run_folders]
    if curves:
        _check_same_max_frame(curves)
    return sorted(curves, key=lambda c: (algorithm_rank(c.label), c.label, str(c.metrics_path)))


def _y_limits(curves: list[Curve]) -> tuple[float, float]:
    # plotly autoranges lines without padding; rangemode 'tozero' extends the range to 0.
    values = np.concatenate(
        [np.concatenate([c.mean, c.mean - c.std, c.mean + c.std]) for c in curves]
    )
    values = values[np.isfinite(values)]
    low = min(0.0, float(values.min())) if values.size else 0.0
    high = max(0.0, float(values.max())) if values.size else 1.0
    return low, high if high > low else low + 1.0


def draw_curves(curves: list[Curve], title: str) -> Figure:
    """A square 1000x1000 figure: one mean line and +-1 std band per curve, legend below."""
    figure = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=FIGURE_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for curve, color in zip(curves, curve_colors([c.label for c in curves]), strict=True):
        axes.plot(curve.frames, curve.mean, color=color, label=curve.label, linewidth=LINE_WIDTH)
        axes.fill_between(
            curve.frames,
            curve.mean - curve.std,
            curve.mean + curve.std,
            color=color,
            alpha=BAND_OPACITY,
            linewidth=0,
        )
    last_frame = max((float(c.frames[-1]) for c in curves if c.frames.size), default=1.0)
    axes.set_xlim(0.0, last_frame)
    axes.set_ylim(*_y_limits(curves))
    axes.set_title(title)
    axes.set_xlabel("frames")
    axes.set_ylabel("mean_returns_ma")
    axes.grid(alpha=0.3)
    axes.legend(
        loc="upper left", bbox_to_anchor=(0.0, -0.08), ncol=max(1, len(curves)), frameon=False
    )
    figure.subplots_adjust(left=0.1, right=0.95, top=0.94, bottom=0.17)
    return figure


def plot_env(env_id: str, run_folders: list[Path], out_png: Path, title: str | None = None) -> None:
    """Draw one env's runs into a square 1000x1000 PNG at ``out_png``, written atomically."""
    if not run_folders:
        raise BenchError(f"plot {env_id}: no run folders to plot")
    figure = draw_curves(load_curves(run_folders), title or env_id)
    out_png = Path(out_png)
    with open_atomic(out_png, "wb") as handle:
        figure.savefig(handle, format="png", dpi=FIGURE_DPI)
