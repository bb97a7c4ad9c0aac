import json
from pathlib import Path

import pytest
from workflow_helpers import tiny_config

from slm_bench.errors import BenchError
from slm_bench.formats import baseline
from slm_bench.matrix.config import read_config

SLM_LAB_BASELINE = Path(__file__).resolve().parent / "fixtures" / "slm-lab" / "random_baseline.json"


def test_bundled_file_is_slm_labs_own():
    """Every env SLM-Lab lists, with SLM-Lab's values (CartPole-v1 22.97, not a re-run)."""
    assert baseline.BUNDLED_PATH.read_bytes() == SLM_LAB_BASELINE.read_bytes()
    data = json.loads(baseline.BUNDLED_PATH.read_text())
    assert len(data) == 135
    assert baseline.random_return("CartPole-v1") == 22.97
    assert baseline.random_return("Acrobot-v1") == -499.86
    assert baseline.random_return("ALE/Pong-v5") == data["ALE/Pong-v5"]["mean"]
    assert baseline.random_return("GymV21Environment-v0") is None  # SLM-Lab wrote null


def test_baseline_path_prefers_config_then_checkout(tmp_path):
    assert baseline.baseline_path(read_config(tiny_config())) is None
    root = tmp_path / "SLM-Lab"
    config = read_config({"checkout": {"root": str(root)}})
    assert baseline.baseline_path(config) is None  # no copy there
    own = root / "slm_lab" / "spec" / "_random_baseline.json"
    own.parent.mkdir(parents=True)
    own.write_text('{"CartPole-v1": {"mean": 1.5, "std": 0}}')
    assert baseline.baseline_path(config) == own
    assert baseline.random_return("CartPole-v1", baseline.baseline_path(config)) == 1.5
    explicit = tmp_path / "mine.json"
    mine = read_config({"checkout": {"root": str(root)}, "random_baseline": str(explicit)})
    assert baseline.baseline_path(mine) == explicit


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "random_baseline.json"
    path.write_text('{"A-v0": {"mean": 1, "std": 0}}')
    assert baseline.random_return("A-v0", path) == 1.0
    path.write_text('{"A-v0": {"mean": 22, "std": 0}}')
    assert baseline.random_return("A-v0", path) == 22.0


def test_unknown_env_is_none():
    assert baseline.random_return("NoSuchEnv-v0") is None


def test_explicit_path_null_nan_and_bad_entries(tmp_path):
    path = tmp_path / "random_baseline.json"
    path.write_text(
        '{"A-v0": null, "B-v0": {"mean": NaN, "std": 0}, "C-v0": {"mean": "x"}, '
        '"D-v0": {"mean": -3, "std": 1}}'
    )
    assert baseline.random_return("A-v0", path) is None
    assert baseline.random_return("B-v0", path) is None
    assert baseline.random_return("D-v0", path) == -3.0
    with pytest.raises(BenchError, match=r"C-v0\.mean: expected a number"):
        baseline.random_return("C-v0", path)


def test_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(BenchError, match="random baseline file not found"):
        baseline.random_return("CartPole-v1", tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(BenchError, match=r"broken\.json: not valid JSON"):
        baseline.random_return("CartPole-v1", broken)


def test_compute_random_baseline_is_seeded_and_plausible():
    first = baseline.compute_random_baseline("CartPole-v1", episodes=20, seed=3)
    second = baseline.compute_random_baseline("CartPole-v1", episodes=20, seed=3)
    assert first == second
    assert 10 < first["mean"] < 40 and first["std"] > 0
    assert baseline.compute_random_baseline("MountainCar-v0", episodes=3) == {
        "mean": -200.0,
        "std": 0.0,
    }


def test_compute_random_baseline_unknown_env():
    with pytest.raises(BenchError, match="cannot make env 'NoSuchEnv-v0'"):
        baseline.compute_random_baseline("NoSuchEnv-v0", episodes=1)


def test_main_merges_into_the_output_file(tmp_path, capsys):
    out = tmp_path / "random_baseline.json"
    out.write_text('{"Zeta-v0": {"mean": 1.0, "std": 0.0}}')
    assert baseline.main(["MountainCar-v0", "--episodes", "2", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert list(data) == ["MountainCar-v0", "Zeta-v0"]
    assert data["MountainCar-v0"] == {"mean": -200.0, "std": 0.0}
    assert "MountainCar-v0: mean -200.00" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["random_baseline.json"]  # no temp files left


def test_main_reports_a_bad_env_without_writing(tmp_path, capsys):
    out = tmp_path / "random_baseline.json"
    assert baseline.main(["NoSuchEnv-v0", "--episodes", "1", "--output", str(out)]) == 1
    assert not out.exists()
    assert "cannot make env" in capsys.readouterr().err
