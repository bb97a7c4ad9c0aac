"""The per-env plot, drawn with `slm-lab plot`'s conventions, from complete runs only."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from run_folder_helpers import slm_lab_python, write_run

from slm_bench.errors import BenchError
from slm_bench.formats import plot
from slm_bench.formats.naming import ALGORITHM_ORDER, plot_png_name

REAL = Path(__file__).parent / "fixtures" / "slm-lab-runs" / "ppo_cartpole_arc_2026_11_29_185430"
FRAMES = [500 * (i + 1) for i in range(40)]


def learning_curve(start: float, end: float, n: int = 40, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    base = np.linspace(start, end, n)
    return [list(base + rng.normal(0, 10, n)) for _ in range(4)]


def test_plot_filename():
    assert plot_png_name("CartPole-v1") == (
        "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    )
    assert plot_png_name("ALE/Pong-v5").startswith("Pong-v5_multi_trial")
    assert plot_png_name("playground/CheetahRun").startswith("CheetahRun_multi_trial")


def test_css_colours_convert_exactly():
    assert plot.css_to_hex("hsl(0, 100%, 50%)") == "#ff0000"
    assert plot.css_to_hex("hsl(120, 100%, 25%)") == "#008000"
    assert plot.css_to_hex("rgb(102,194,165)") == "#66c2a5"
    with pytest.raises(ValueError):
        plot.css_to_hex("blue")


def test_colours_are_slm_labs_per_algorithm_table_then_set2_by_position():
    assert list(plot.ALGORITHM_PALETTE) == list(ALGORITHM_ORDER)
    colours = plot.curve_colors(["DQN", "DDQN", "PPO", "MyAlgo"])
    assert colours == [
        plot.css_to_hex("hsl(175, 55%, 45%)"),  # DQN: its fixed colour
        plot.css_to_hex("rgb(252,141,98)"),  # DDQN (no PER) at position 1: Set2[1]
        plot.css_to_hex("hsl(280, 55%, 55%)"),  # PPO: its fixed colour
        plot.css_to_hex("rgb(231,138,195)"),  # unknown at position 3: Set2[3]
    ]


def test_palette_and_order_equal_the_real_slm_lab(tmp_path):
    """SLM-Lab's own ALGO_PALETTE, ALGO_ORDER and default palette, read from its install."""
    code = (
        "import json; from slm_lab.lib import viz; "
        "from slm_lab.cli.plot import ALGO_PALETTE, ALGO_ORDER; "
        "print(json.dumps([ALGO_PALETTE, ALGO_ORDER, viz.get_palette(8)]))"
    )
    done = subprocess.run(
        [str(slm_lab_python()), "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    palette, order, default = json.loads(done.stdout.strip().splitlines()[-1])
    assert palette == plot.ALGORITHM_PALETTE
    assert order == list(ALGORITHM_ORDER)
    assert default == list(plot.DEFAULT_PALETTE)


def test_band_is_pandas_sample_std_of_the_rolling_means(tmp_path):
    returns = learning_curve(20, 400)
    run = write_run(tmp_path, "ppo", "PPO", returns, FRAMES)
    (curve,) = plot.load_curves([run])
    smoothed = pd.DataFrame({s: pd.Series(r).rolling(100, min_periods=1).mean()
                             for s, r in enumerate(returns)})  # fmt: skip
    np.testing.assert_allclose(curve.mean, smoothed.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(curve.std, smoothed.std(axis=1, ddof=1), rtol=1e-12)
    # Not numpy's population std: with 4 sessions that band is sqrt(3/4) = 0.87 as wide.
    ratio = np.std(smoothed.to_numpy(), axis=1, ddof=0)[1:] / curve.std[1:]
    np.testing.assert_allclose(ratio, np.sqrt(3 / 4))
    # The drawn band spans exactly mean +- std.
    figure = plot.draw_curves([curve], "CartPole-v1")
    (band,) = figure.axes[0].collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(float(np.max(curve.mean + curve.std)))
    assert ys.min() == pytest.approx(float(np.min(curve.mean - curve.std)))


def test_band_equals_slm_labs_own_calc_on_a_real_run(tmp_path):
    """SLM-Lab's calc_sr_ma and calc_srs_mean_std on the real run's trial metrics."""
    code = (
        "import json, sys; import pandas as pd; from slm_lab.lib import util, viz; "
        "local = json.load(open(sys.argv[1]))['local']; "
        "mean, std = util.calc_srs_mean_std([viz.calc_sr_ma(pd.Series(s)) "
        "for s in local['mean_returns']]); print(json.dumps([mean.tolist(), std.tolist()]))"
    )
    metrics = REAL / "info" / "ppo_cartpole_arc_t0_trial_metrics.json"
    done = subprocess.run(
        [str(slm_lab_python()), "-c", code, str(metrics)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    mean, std = json.loads(done.stdout.strip().splitlines()[-1])
    (curve,) = plot.load_curves([REAL])
    np.testing.assert_allclose(curve.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(curve.std, std, rtol=1e-12)


def test_real_slm_lab_folder_plots_with_x_from_zero_and_y_through_zero(tmp_path):
    (curve,) = plot.load_curves([REAL])
    assert curve.label == "PPO" and curve.max_frame == 5000
    assert curve.frames[0] == 500 and curve.frames[-1] == 5000
    figure = plot.draw_curves([curve], "CartPole-v1")
    (axes,) = figure.axes
    assert axes.get_xlim() == (0.0, 5000.0)
    low, high = axes.get_ylim()
    assert low == 0.0  # returns are positive: the axis still starts at 0
    assert high == pytest.approx(float(np.max(curve.mean + curve.std)))
    assert axes.get_lines()[0].get_color() == plot.css_to_hex(plot.ALGORITHM_PALETTE["PPO"])
    out = tmp_path / "plots" / plot_png_name("CartPole-v1")
    plot.plot_env("CartPole-v1", [REAL], out)
    assert matplotlib.image.imread(out).shape[:2] == (1000, 1000)


def test_plot_env_writes_a_square_1000px_png(tmp_path):
    runs = [
        write_run(tmp_path, "sac", "SoftActorCritic", learning_curve(20, 420), FRAMES),
        write_run(tmp_path, "ppo", "PPO", learning_curve(20, 495, seed=1), FRAMES),
        write_run(tmp_path, "reinforce", "Reinforce", learning_curve(20, 480, seed=2), FRAMES),
        write_run(tmp_path, "ddqn_per", "DoubleDQN", learning_curve(20, 450, seed=3), FRAMES),
    ]
    out = tmp_path / "plots" / plot_png_name("CartPole-v1")
    plot.plot_env("CartPole-v1", runs, out)
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (1000, 1000)
    assert image[..., :3].std() > 0.05  # something was drawn
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left


def test_curves_follow_slm_labs_order(tmp_path):
    runs = [
        write_run(tmp_path, "sac", "SoftActorCritic", learning_curve(0, 1), FRAMES),
        write_run(tmp_path, "crossq", "CrossQ", learning_curve(0, 1), FRAMES),
        write_run(tmp_path, "zz_ppo", "PPO", learning_curve(0, 1), FRAMES),
        write_run(tmp_path, "aa_ppo", "PPO", learning_curve(0, 1), FRAMES),
        write_run(tmp_path, "ddqn", "DoubleDQN", learning_curve(0, 1), FRAMES),
        write_run(tmp_path, "vdqn", "VanillaDQN", learning_curve(0, 1), FRAMES),
        write_run(tmp_path, "a2c", "ActorCritic", learning_curve(0, 1), FRAMES),
    ]
    curves = plot.load_curves(runs)
    assert [c.label for c in curves] == ["DQN", "DDQN+PER", "A2C", "PPO", "PPO", "SAC", "CrossQ"]
    # Same label: ordered by trial metrics path, as slm-lab plot sorts (order, legend, path).
    assert [c.folder.name.split("_2026")[0] for c in curves[3:5]] == ["aa_ppo", "zz_ppo"]


def test_legend_below_and_labels(tmp_path):
    high = write_run(tmp_path, "ppo", "PPO", [[1000.0, 1001.0, 1002.0]], [1, 2, 3])
    low = write_run(tmp_path, "a2c", "ActorCritic", [[900.0, 950.0, 990.0]], [1, 2, 3])
    figure = plot.draw_curves(plot.load_curves([high, low]), "CartPole-v1")
    (axes,) = figure.axes
    assert axes.get_ylim()[0] == 0.0
    assert axes.get_ylabel() == "mean_returns_ma" and axes.get_xlabel() == "frames"
    assert axes.get_title() == "CartPole-v1"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["A2C", "PPO"]
    legend_box = axes.get_legend().get_window_extent(figure.canvas.get_renderer())
    axes_box = axes.get_window_extent(figure.canvas.get_renderer())
    assert legend_box.y1 <= axes_box.y0  # legend below the plot area


def test_runs_with_different_max_frame_are_refused(tmp_path):
    a = write_run(tmp_path / "a", "ppo", "PPO", learning_curve(0, 1), FRAMES)
    b = write_run(tmp_path / "b", "sac", "SoftActorCritic", learning_curve(0, 1, 20), FRAMES[:20])
    out = tmp_path / "p.png"
    with pytest.raises(BenchError) as info:
        plot.plot_env("CartPole-v1", [a, b], out)
    message = str(info.value)
    assert f"{a} has 20000" in message and f"{b} has 10000" in message
    assert not out.exists()


def test_a_killed_run_is_never_plotted(tmp_path):
    # SLM-Lab rewrote the trial metrics at frame 10000 of 20000, then the run was killed.
    returns = [r[:20] for r in learning_curve(0, 100)]
    run = write_run(tmp_path, "ppo", "PPO", returns, FRAMES, max_frame=20000)
    out = tmp_path / "p.png"
    with pytest.raises(BenchError) as info:
        plot.plot_env("CartPole-v1", [run], out)
    assert str(info.value) == (
        f"{run}/info/ppo_t0_trial_metrics.json: frame reached 10000 of max_frame 20000 "
        "(last checkpoint 20000): the run did not finish"
    )
    assert not out.exists()


def test_one_unfinished_session_is_never_plotted(tmp_path):
    returns = learning_curve(0, 100)
    returns[2] = returns[2][:30]
    run = write_run(tmp_path, "ppo", "PPO", returns, FRAMES)
    with pytest.raises(BenchError, match=r"trial_metrics\.json: session 2: frame reached 15000 "):
        plot.plot_env("CartPole-v1", [run], tmp_path / "p.png")


@pytest.mark.parametrize(
    "cut, expected",
    [
        (lambda t: t[: t.rindex("\n", 0, len(t) - 1) + 1], r"frame reached 19500 of max_frame"),
        (lambda t: t[:-9], r"truncated \(a row is cut short\)"),
        (lambda t: "", r"expected a session_df CSV with frame and total_reward"),
    ],
    ids=["last-row-lost", "mid-row", "empty"],
)
def test_a_truncated_session_csv_is_never_plotted(tmp_path, cut, expected):
    run = write_run(tmp_path, "ppo", "PPO", learning_curve(0, 100), FRAMES)
    csv = run / "info" / "ppo_t0_s1_session_df_train.csv"
    csv.write_text(cut(csv.read_text()))
    out = tmp_path / "p.png"
    with pytest.raises(BenchError, match=rf"^{csv}: .*{expected}"):
        plot.plot_env("CartPole-v1", [run], out)
    assert not out.exists()


def test_a_missing_session_csv_or_one_that_disagrees_is_refused(tmp_path):
    run = write_run(tmp_path, "ppo", "PPO", learning_curve(0, 100), FRAMES)
    csv = run / "info" / "ppo_t0_s3_session_df_train.csv"
    original = csv.read_text()
    rows = original.splitlines()
    rows[5] = "999" + rows[5][rows[5].index(",") :]  # one total_reward edited
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(BenchError, match=r"s3_session_df_train\.csv: total_reward .* differs"):
        plot.plot_env("CartPole-v1", [run], tmp_path / "p.png")
    csv.unlink()
    with pytest.raises(BenchError, match=r"s3_session_df_train\.csv: missing; session 3"):
        plot.plot_env("CartPole-v1", [run], tmp_path / "p.png")


def test_infinite_returns_and_corrupt_json_are_one_line(tmp_path):
    run = write_run(tmp_path, "ppo", "PPO", [[1.0, 2.0, 3.0]], [1, 2, 3])
    metrics = run / "info" / "ppo_t0_trial_metrics.json"
    data = json.loads(metrics.read_text())
    data["local"]["mean_returns"][0][1] = float("inf")
    metrics.write_text(json.dumps(data))
    (run / "info" / "ppo_t0_s0_session_df_train.csv").write_text(
        "total_reward,frame\n1.0,1\ninf,2\n3.0,3\n"
    )
    with pytest.raises(BenchError, match=r"mean_returns\[0\] holds inf: expected finite"):
        plot.plot_env("CartPole-v1", [run], tmp_path / "p.png")
    text = metrics.read_text()
    metrics.write_text(text[: len(text) // 2])
    with pytest.raises(BenchError) as info:
        plot.plot_env("CartPole-v1", [run], tmp_path / "p.png")
    assert str(info.value).startswith(f"{metrics}: invalid JSON at line 1")
    assert "\n" not in str(info.value)


def test_empty_and_non_run_folders_are_refused(tmp_path):
    with pytest.raises(BenchError, match="no run folders"):
        plot.plot_env("CartPole-v1", [], tmp_path / "p.png")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(BenchError, match=r"not an SLM-Lab run folder"):
        plot.plot_env("CartPole-v1", [empty], tmp_path / "p.png")
    scalar_only = Path(shutil.copytree(REAL, tmp_path / REAL.name))
    (scalar_only / "info" / "ppo_cartpole_arc_t0_trial_metrics.json").unlink()
    with pytest.raises(BenchError, match=r"local\.mean_returns and local\.frames: expected"):
        plot.plot_env("CartPole-v1", [scalar_only], tmp_path / "p.png")
