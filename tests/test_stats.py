"""Statistics: IQM and the stratified bootstrap checked against scipy, normalisation, the
performance profile, and stats.json / summary.json / the profile plot from a real tiny run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_results import CELLS, tiny_benchmark

from slm_bench.errors import BenchError
from slm_bench.formats.session_scores import session_mas
from slm_bench.formats.settings import parse_target
from slm_bench.statistics.stats import (
    normalise,
    percentile_ci,
    performance_profile,
    pooled_iqm,
    pooled_mean,
    score_span,
    summarise,
    trimmed_mean,
)

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation")

SLM_LAB_RUN = Path(__file__).parent / "fixtures/slm-lab-runs/ppo_cartpole_arc_2026_11_29_185430"
# Fixed data: per-session final MAs of three cells (a task each), uneven and with outliers.
FIXED = [
    [256.49, 368.42, 417.10, 454.10, 487.15],
    [120.0, 133.5, 98.25, 410.0],
    [-95.1, -88.4, -102.7, -91.0, -300.2, -89.9],
]


@pytest.mark.parametrize("values", [*FIXED, [1.0], [3.0, 1.0], list(range(17))])
def test_iqm_is_scipys_25_percent_trimmed_mean(values):
    assert trimmed_mean(np.array(values, dtype=float)) == pytest.approx(
        scipy_stats.trim_mean(values, 0.25)
    )


def _scipy_interval(strata, statistic):
    result = scipy_stats.bootstrap(
        tuple(np.asarray(s, dtype=float) for s in strata),
        lambda *samples, axis: statistic([np.moveaxis(s, axis, -1) for s in samples]),
        vectorized=True,
        paired=False,
        n_resamples=20_000,
        method="percentile",
        confidence_level=0.95,
        rng=np.random.default_rng(12345),
    )
    return result.confidence_interval.low, result.confidence_interval.high


@pytest.mark.parametrize("statistic", [pooled_iqm, pooled_mean], ids=["iqm", "mean"])
@pytest.mark.parametrize("strata", [FIXED, FIXED[:1], FIXED[1:]], ids=["3 tasks", "1", "2"])
def test_stratified_bootstrap_ci_matches_scipy(strata, statistic):
    """scipy resamples each sample independently (paired=False): the stratified bootstrap."""
    low, high = percentile_ci(strata, statistic, reps=20_000, seed=7)
    ref_low, ref_high = _scipy_interval(strata, statistic)
    spread = np.ptp(np.concatenate(strata))
    # Two independent Monte Carlo estimates of the same percentiles agree to about 1% of the range
    assert low == pytest.approx(ref_low, abs=0.02 * spread)
    assert high == pytest.approx(ref_high, abs=0.02 * spread)
    assert low < float(statistic([np.concatenate(strata)])) < high


def test_bootstrap_is_stratified_and_reproducible():
    # Resampled within each task, the pooled mean of two constant tasks of equal size never moves;
    # resampling the pooled runs would mix them.
    strata = [[0.0] * 4, [10.0] * 4]
    assert percentile_ci(strata, pooled_mean) == (5.0, 5.0)
    assert percentile_ci(FIXED, pooled_iqm) == percentile_ci(FIXED, pooled_iqm)


def test_normalised_score_is_0_at_random_and_1_at_target():
    cartpole, acrobot = parse_target("> 400"), parse_target("> -100")
    assert normalise(22.97, cartpole, 22.97) == pytest.approx(0.0)
    assert normalise(400.0, cartpole, 22.97) == pytest.approx(1.0)
    assert normalise(-300.0, acrobot, -500.0) == pytest.approx(0.5)
    # random unknown: target - |target| - 1 stands in (as for Status)
    assert normalise(-100.0, acrobot, None) == pytest.approx(1.0)
    assert normalise(-201.0, acrobot, None) == pytest.approx(0.0)
    assert normalise(10.0, None, 0.0) is None
    assert score_span(cartpole, 22.97) == pytest.approx(377.03)


def test_performance_profile_counts_runs_above_tau_averaged_over_tasks():
    strata = [[0.1, 0.5, 0.9, 1.2], [0.0, 0.0, 1.0, 1.0]]
    point, low, high = performance_profile(strata, np.array([-0.1, 0.5, 0.95, 2.0]))
    assert point == pytest.approx([1.0, (2 / 4 + 2 / 4) / 2, (1 / 4 + 2 / 4) / 2, 0.0])
    assert np.all(low <= point + 1e-12) and np.all(point <= high + 1e-12)


def test_summary_of_fixed_data():
    summary = summarise([FIXED[0]])
    assert summary.n == 5
    assert summary.mean == pytest.approx(np.mean(FIXED[0]))
    assert summary.std == pytest.approx(np.std(FIXED[0], ddof=1))
    assert summary.iqm == pytest.approx(scipy_stats.trim_mean(FIXED[0], 0.25))
    assert summary.iqm_ci[0] <= summary.iqm <= summary.iqm_ci[1]


# -- run folders ------------------------------------------------------------------------------


def test_session_mas_of_a_real_slm_lab_run_average_to_its_trial_score():
    mas, sources, trial = session_mas(SLM_LAB_RUN)
    assert len(mas) == 4
    assert all(source.endswith("_session_metrics_scalar_eval.json") for source in sources)
    assert np.mean(mas) == pytest.approx(trial, abs=1e-4)
    assert trial == pytest.approx(25.98, abs=0.01)


def test_session_ma_falls_back_to_the_session_csv(tmp_path):
    folder = shutil.copytree(SLM_LAB_RUN, tmp_path / SLM_LAB_RUN.name)
    expected, _, _ = session_mas(folder)
    for path in (folder / "info").glob("*_session_metrics*.json"):
        path.unlink()
    mas, sources, _ = session_mas(folder)
    assert all(source.endswith("_session_df_eval.csv") for source in sources)
    assert mas == pytest.approx(expected, abs=1e-4)
    for path in (folder / "info").glob("*_session_df_*.csv"):
        path.unlink()
    with pytest.raises(BenchError, match="session 0: no total_reward_ma"):
        session_mas(folder)


# -- a real tiny run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return tiny_benchmark(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("cell", CELLS)
def test_cell_stats_from_a_real_run(built, cell):
    stats = json.loads((built / f"results/{cell}/stats.json").read_text())
    metrics = json.loads((built / f"results/{cell}/metrics.json").read_text())
    assert [s["session"] for s in stats["sessions"]] == [0, 1, 2, 3]
    mas = [s["final_ma"] for s in stats["sessions"]]
    # the table's MA (the log's trial_metrics, rounded as logged) is the mean of the sessions
    assert stats["mean"] == pytest.approx(metrics["total_reward_ma"], abs=0.01)
    assert stats["std"] == pytest.approx(np.std(mas, ddof=1))
    assert stats["iqm"] == pytest.approx(scipy_stats.trim_mean(mas, 0.25))
    assert min(mas) <= stats["iqm_ci"][0] <= stats["iqm"] <= stats["iqm_ci"][1] <= max(mas)
    assert stats["random_return"] is not None
    normalised = stats["normalised"]
    target = parse_target(stats["target"])
    assert normalised["sessions"] == pytest.approx(
        [normalise(v, target, stats["random_return"]) for v in mas]
    )


@pytest.mark.slow
def test_table_summary_and_performance_profile_from_a_real_run(built):
    summary = json.loads((built / "results/stats/summary.json").read_text())
    assert set(summary["by_env"]) == {"CartPole-v1", "Acrobot-v1"}
    assert set(summary["by_algorithm"]) == {"PPO", "DQN"}
    assert summary["table"]["tasks"] == 3 and summary["table"]["n"] == 12
    assert summary["by_algorithm"]["PPO"]["tasks"] == 2
    every = [
        v
        for cell in CELLS
        for v in json.loads((built / f"results/{cell}/stats.json").read_text())["normalised"][
            "sessions"
        ]
    ]
    assert summary["table"]["iqm"] == pytest.approx(scipy_stats.trim_mean(every, 0.25))
    low, high = summary["table"]["iqm_ci"]
    assert low <= summary["table"]["iqm"] <= high
    png = built / "results/stats/performance_profile.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
