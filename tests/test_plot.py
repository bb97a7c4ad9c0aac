import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from slm_bench import plot
from slm_bench.errors import BenchError
from slm_bench.naming import plot_png_name
from slm_bench.spec import ALGORITHM_ORDER

MEMORY = {"DoubleDQN": "PrioritizedReplay", "SoftActorCritic": "Replay", "DQN": "Replay"}


def make_run(
    root: Path,
    name: str,
    algorithm: str,
    mean_returns: list[list[float]],
    frames: list[int],
    max_frame: int = 200_000,
) -> Path:
    """A run folder in SLM-Lab's layout with just the files `slm-lab plot` reads."""
    folder = root / f"{name}_2026_02_11_144029"
    (folder / "info").mkdir(parents=True)
    spec = {
        "agent": {
            "name": algorithm,
            "algorithm": {"name": algorithm},
            "memory": {"name": MEMORY.get(algorithm, "OnPolicyBatchReplay")},
        },
        "env": {"name": "CartPole-v1", "num_envs": 4, "max_frame": max_frame},
        "meta": {"max_session": len(mean_returns), "log_frequency": 500, "trial": 0},
    }
    (folder / f"{name}_spec.json").write_text(json.dumps(spec))
    # The trial copy must not be the one read: give it another algorithm.
    trial_spec = {**spec, "agent": {"name": "X", "algorithm": {"name": "Reinforce"}}}
    (folder / f"{name}_t0_spec.json").write_text(json.dumps(trial_spec))
    scalar = {"frame": frames[-1], "total_reward_ma": float(np.mean(mean_returns[0][-5:]))}
    local = {
        "mean_returns": mean_returns,
        "strengths": mean_returns,
        "frames": frames,
        "opt_steps": list(range(len(frames))),
        "consistencies": [float("nan")] * len(frames),
    }
    # json.dumps writes bare NaN, as SLM-Lab does
    metrics = json.dumps({"scalar": scalar, "local": local})
    (folder / "info" / f"{name}_t0_trial_metrics.json").write_text(metrics)
    return folder


def learning_curve(start: float, end: float, n: int = 40, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    base = np.linspace(start, end, n)
    return [list(base + rng.normal(0, 10, n)) for _ in range(4)]


FRAMES = [int(f) for f in np.linspace(500, 200_000, 40)]


def test_plot_filename():
    assert plot_png_name("CartPole-v1") == (
        "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    )
    assert plot_png_name("ALE/Pong-v5").startswith("Pong-v5_multi_trial")
    assert plot_png_name("playground/CheetahRun").startswith("CheetahRun_multi_trial")


def test_one_fixed_colour_per_algorithm():
    assert list(plot.ALGORITHM_COLORS) == list(ALGORITHM_ORDER)
    assert len(set(plot.ALGORITHM_COLORS.values())) == len(ALGORITHM_ORDER)


def test_plot_env_writes_a_square_1000px_png(tmp_path):
    runs = [
        make_run(tmp_path, "sac_cartpole", "SoftActorCritic", learning_curve(20, 420), FRAMES),
        make_run(tmp_path, "ppo_cartpole", "PPO", learning_curve(20, 495, seed=1), FRAMES),
        make_run(
            tmp_path, "reinforce_cartpole", "Reinforce", learning_curve(20, 480, seed=2), FRAMES
        ),
        make_run(
            tmp_path, "ddqn_per_cartpole", "DoubleDQN", learning_curve(20, 450, seed=3), FRAMES
        ),
    ]
    out = tmp_path / "plots" / plot_png_name("CartPole-v1")
    plot.plot_env("CartPole-v1", runs, out)
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (1000, 1000)
    assert image[..., :3].std() > 0.05  # something was drawn
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left


def test_curves_follow_the_algorithm_order(tmp_path):
    runs = [
        make_run(tmp_path, "sac", "SoftActorCritic", learning_curve(0, 1), FRAMES),
        make_run(tmp_path, "crossq", "CrossQ", learning_curve(0, 1), FRAMES),
        make_run(tmp_path, "ppo", "PPO", learning_curve(0, 1), FRAMES),
        make_run(tmp_path, "ddqn", "DoubleDQN", learning_curve(0, 1), FRAMES),
        make_run(tmp_path, "vdqn", "VanillaDQN", learning_curve(0, 1), FRAMES),
        make_run(tmp_path, "a2c", "ActorCritic", learning_curve(0, 1), FRAMES),
    ]
    labels = [curve.label for curve in plot.load_curves(runs)]
    assert labels == ["DQN", "DDQN+PER", "A2C", "PPO", "SAC", "CrossQ"]


def test_curve_is_rolling_mean_then_session_mean_and_std(tmp_path):
    sessions = [[0.0, 10.0, 20.0, float("nan")], [10.0, 20.0, 30.0]]  # unequal: cut to shortest
    run = make_run(tmp_path, "ppo", "PPO", sessions, [100, 200, 300, 400])
    (curve,) = plot.load_curves([run])
    # session 0 -> [0, 5, 10]; session 1 -> [10, 15, 20]
    np.testing.assert_allclose(curve.frames, [100, 200, 300])
    np.testing.assert_allclose(curve.mean, [5, 10, 15])
    np.testing.assert_allclose(curve.std, [5, 5, 5])


def test_rolling_window_is_100_checkpoints(tmp_path):
    values = list(range(150))
    run = make_run(tmp_path, "ppo", "PPO", [values], list(range(150)))
    (curve,) = plot.load_curves([run])
    assert curve.mean[99] == pytest.approx(np.mean(values[:100]))
    assert curve.mean[149] == pytest.approx(np.mean(values[50:150]))


def test_figure_axis_labels_legend_and_zero(tmp_path):
    # All returns far above zero: the y axis must still reach down to 0.
    high = make_run(tmp_path, "ppo", "PPO", [[1000.0, 1001.0, 1002.0]], [1, 2, 3])
    low = make_run(tmp_path, "a2c", "ActorCritic", [[900.0, 950.0, 990.0]], [1, 2, 3])
    figure = plot.draw_curves(plot.load_curves([high, low]), "CartPole-v1")
    (axes,) = figure.axes
    assert axes.get_ylim()[0] <= 0 < axes.get_ylim()[1]
    assert axes.get_ylabel() == "mean_returns_ma"
    assert axes.get_title() == "CartPole-v1"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["A2C", "PPO"]
    assert [line.get_color() for line in axes.get_lines()] == [
        plot.ALGORITHM_COLORS["A2C"],
        plot.ALGORITHM_COLORS["PPO"],
    ]
    legend_box = axes.get_legend().get_window_extent(figure.canvas.get_renderer())
    axes_box = axes.get_window_extent(figure.canvas.get_renderer())
    assert legend_box.y1 <= axes_box.y0  # legend below the plot area


def test_runs_with_different_max_frame_are_refused(tmp_path):
    a = make_run(tmp_path, "ppo", "PPO", learning_curve(0, 1), FRAMES, max_frame=200_000)
    b = make_run(
        tmp_path, "sac", "SoftActorCritic", learning_curve(0, 1), FRAMES, max_frame=100_000
    )
    out = tmp_path / "p.png"
    with pytest.raises(BenchError) as info:
        plot.plot_env("CartPole-v1", [a, b], out)
    message = str(info.value)
    assert f"{a} has 200000" in message and f"{b} has 100000" in message
    assert not out.exists()


def test_empty_and_incomplete_folders_are_refused(tmp_path):
    with pytest.raises(BenchError, match="no run folders"):
        plot.plot_env("CartPole-v1", [], tmp_path / "p.png")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(BenchError, match=r"no info/\*t0_trial_metrics\.json"):
        plot.plot_env("CartPole-v1", [empty], tmp_path / "p.png")
    run = make_run(tmp_path, "ppo", "PPO", [[1.0, 2.0]], [1, 2])
    (run / "ppo_spec.json").unlink()
    with pytest.raises(BenchError, match=r"no \{name\}_spec\.json"):
        plot.plot_env("CartPole-v1", [run], tmp_path / "p.png")
    bad = make_run(tmp_path / "b", "ppo", "PPO", [[1.0, 2.0]], [1, 2])
    (bad / "info" / "ppo_t0_trial_metrics.json").write_text('{"scalar": {}, "local": {}}')
    with pytest.raises(BenchError, match=r"local\.mean_returns: expected non-empty"):
        plot.plot_env("CartPole-v1", [bad], tmp_path / "p.png")
