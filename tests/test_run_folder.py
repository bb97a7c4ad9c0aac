"""SLM-Lab run folders: layout paths, train/search detection, metrics with NaN, Settings checks."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from slm_bench.errors import BenchError
from slm_bench.formats.metrics import session_metrics, trial_metrics
from slm_bench.formats.run_folder import (
    FOLDER_TS_RE,
    RunLayout,
    check_settings,
    final_checkpoint_frame,
    folder_name,
    folder_prefix,
    load_json,
    read_run_folder,
    require_complete,
    require_train,
    run_budget,
    trial_score,
)
from slm_bench.formats.settings import parse_settings_line
from slm_bench.formats.spec import spec_settings

FIXTURES = Path(__file__).parent / "fixtures" / "run_folders"
TRAIN = FIXTURES / "ppo_cartpole_2025_03_14_092653"
SEARCH = FIXTURES / "ppo_cartpole_2025_03_15_101500"
NAN = FIXTURES / "sac_pendulum_2025_03_17_120000"
# A folder the real SLM-Lab wrote: 4 sessions of ppo_cartpole_arc to max_frame 5000.
REAL = Path(__file__).parent / "fixtures" / "slm-lab-runs" / "ppo_cartpole_arc_2026_11_29_185430"
REAL_METRICS = "info/ppo_cartpole_arc_t0_trial_metrics.json"


@pytest.fixture
def train_copy(tmp_path) -> Path:
    return Path(shutil.copytree(TRAIN, tmp_path / TRAIN.name))


def test_layout_paths():
    layout = RunLayout(Path("data/ppo_2025_01_02_030405"), "ppo")
    root = "data/ppo_2025_01_02_030405"
    assert str(layout.spec_json) == f"{root}/ppo_spec.json"
    assert str(layout.trial_spec_json) == f"{root}/ppo_t0_spec.json"
    assert str(layout.info_dir) == f"{root}/info"
    assert str(layout.trial_metrics_json) == f"{root}/info/ppo_t0_trial_metrics.json"
    assert str(layout.trial_metrics_scalar_json) == f"{root}/info/ppo_t0_trial_metrics_scalar.json"
    assert str(layout.root_trial_metrics_scalar_json) == f"{root}/ppo_t0_trial_metrics_scalar.json"
    assert str(layout.session_df_csv(2)) == f"{root}/info/ppo_t0_s2_session_df_train.csv"
    assert str(layout.session_df_csv(0, "eval")) == f"{root}/info/ppo_t0_s0_session_df_eval.csv"
    assert str(layout.session_metrics_json(1, "train")) == (
        f"{root}/info/ppo_t0_s1_session_metrics_train.json"
    )
    assert str(layout.session_metrics_scalar_json(1, "eval")) == (
        f"{root}/info/ppo_t0_s1_session_metrics_scalar_eval.json"
    )
    assert str(layout.graph_dir) == f"{root}/graph"
    assert str(layout.log_dir) == f"{root}/log"
    assert str(layout.trial_log) == f"{root}/log/ppo_t0.log"
    assert str(layout.session_log(3)) == f"{root}/log/ppo_t0_s3.log"
    assert str(layout.model_dir) == f"{root}/model"


def test_layout_matches_fixture_folder():
    layout = RunLayout(TRAIN, "ppo_cartpole")
    for path in (
        layout.spec_json,
        layout.trial_spec_json,
        layout.trial_metrics_json,
        layout.trial_metrics_scalar_json,
        layout.root_trial_metrics_scalar_json,
        layout.session_df_csv(0),
    ):
        assert path.is_file(), path


def test_folder_names():
    name = folder_name("ppo_cartpole_pong", datetime(2025, 3, 14, 9, 26, 53))
    assert name == "ppo_cartpole_pong_2025_03_14_092653"
    assert FOLDER_TS_RE.search(name).group(1) == "2025_03_14_092653"
    assert folder_prefix(name) == "ppo_cartpole_pong"
    assert folder_prefix(f"data/{name}") == "ppo_cartpole_pong"
    for bad in ("ppo_cartpole", "ppo_2025_03_14_0926", "2025_03_14_092653"):
        with pytest.raises(BenchError, match="not a run folder name"):
            folder_prefix(bad)


def test_load_json_bare_nan_and_infinities(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"a": NaN, "b": Infinity, "c": -Infinity, "d": [1, -Infinity]}')
    data = load_json(path)
    assert math.isnan(data["a"]) and data["b"] == math.inf and data["c"] == -math.inf
    assert data["d"] == [1, -math.inf]


def test_load_json_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,\n "b": }')
    with pytest.raises(BenchError, match=r"bad\.json: invalid JSON at line 2"):
        load_json(bad)
    with pytest.raises(BenchError, match=r"none\.json: cannot read"):
        load_json(tmp_path / "none.json")


def test_read_train_folder():
    folder = read_run_folder(TRAIN)
    assert folder.prefix == "ppo_cartpole" and folder.kind == "train"
    assert folder.search_evidence == ()
    assert folder.spec["meta"]["trial"] == 0
    assert "search" in folder.spec  # kept from the spec file; meta.trial 0 says train
    assert set(folder.trial_metrics) == {"scalar", "local"}
    require_train(folder)
    assert trial_score(folder) == 412.37


def test_read_search_folder_and_refuse_it():
    folder = read_run_folder(SEARCH)
    assert folder.kind == "search"
    assert folder.search_evidence == (
        "meta.trial == -1",
        "a search block in the spec",
        "ray_tune/",
        "ppo_cartpole_experiment_df.csv",
        "2 trials t0..t1",
    )
    assert folder.trial_metrics["scalar"]["total_reward_ma"] == 300.0  # t0's
    with pytest.raises(
        BenchError,
        match=r"^data/ppo_cartpole_2025_03_15_101500 is a search run \(meta.trial == -1, "
        r"a search block in the spec, ray_tune/, .*\); only train runs enter the table$",
    ):
        require_train(folder)


def _edit_spec(root: Path, edit) -> None:
    path = root / "ppo_cartpole_spec.json"
    spec = json.loads(path.read_text())
    edit(spec)
    path.write_text(json.dumps(spec))


@pytest.mark.parametrize(
    "change, evidence",
    [
        (lambda root: _edit_spec(root, lambda s: s["meta"].update(trial=-1)), "meta.trial == -1"),
        (
            lambda root: _edit_spec(root, lambda s: s["meta"].pop("trial")),
            "a search block in the spec",
        ),
        (lambda root: (root / "ray_tune").mkdir(), "ray_tune/"),
        (
            lambda root: (root / "info" / "ppo_cartpole_experiment_df.csv").write_text("trial\n"),
            "ppo_cartpole_experiment_df.csv",
        ),
        (
            lambda root: (root / "ppo_cartpole_experiment_df.csv").write_text("trial\n"),
            "ppo_cartpole_experiment_df.csv",
        ),
        (
            lambda root: (root / "info" / "ppo_cartpole_t3_trial_metrics.json").write_text("{}"),
            "2 trials t0..t3",
        ),
    ],
)
def test_each_search_sign_alone(train_copy, change, evidence):
    change(train_copy)
    folder = read_run_folder(train_copy)
    assert folder.kind == "search" and evidence in folder.search_evidence
    with pytest.raises(BenchError, match="is a search run"):
        require_train(folder)


def test_nan_metrics_folder():
    folder = read_run_folder(NAN)
    scalar = folder.trial_metrics["scalar"]
    assert math.isnan(scalar["strength"])
    assert scalar["max_strength"] == math.inf and scalar["final_strength"] == -math.inf
    assert trial_score(folder) == -1245.6


def test_renamed_folder_and_scalar_only_metrics(train_copy, tmp_path):
    renamed = train_copy.rename(tmp_path / "my_run")
    (renamed / "info" / "ppo_cartpole_t0_trial_metrics.json").unlink()
    folder = read_run_folder(renamed)
    assert folder.prefix == "ppo_cartpole" and folder.kind == "train"
    assert folder.trial_metrics == {
        "scalar": load_json(renamed / "info" / "ppo_cartpole_t0_trial_metrics_scalar.json")
    }
    assert trial_score(folder) == 412.37


def test_not_a_run_folder(tmp_path):
    with pytest.raises(BenchError, match="no such directory"):
        read_run_folder(tmp_path / "absent")
    empty = tmp_path / "ppo_2025_01_02_030405"
    empty.mkdir()
    with pytest.raises(BenchError, match=r"not an SLM-Lab run folder \(no single ppo_spec.json"):
        read_run_folder(empty)


def test_trial_score_needs_metrics(train_copy):
    for path in train_copy.rglob("*trial_metrics*.json"):
        path.unlink()
    folder = read_run_folder(train_copy)
    assert folder.trial_metrics is None
    with pytest.raises(BenchError, match=r"ppo_cartpole_t0_trial_metrics\.json: missing"):
        trial_score(folder)


def test_spec_settings():
    assert spec_settings(read_run_folder(TRAIN).spec) == {
        "max_frame": 200000,
        "num_envs": 4,
        "max_session": 2,
        "log_frequency": 500,
    }
    # max_frame 30000.0 reads as 30000; a spec without num_envs runs one env.
    nan_settings = spec_settings(read_run_folder(NAN).spec)
    assert nan_settings["max_frame"] == 30000 and isinstance(nan_settings["max_frame"], int)
    assert nan_settings["num_envs"] == 1


def test_check_settings():
    folder = read_run_folder(TRAIN)
    check_settings(folder, parse_settings_line("max_frame 2e5 | num_envs 4 | max_session 2"))
    check_settings(folder, parse_settings_line("max_frame 1e5-3e5 | log_frequency 500"))
    with pytest.raises(BenchError) as raised:
        check_settings(
            folder,
            parse_settings_line("max_frame 3e6 | num_envs 4 | max_session 4 | log_frequency 500"),
        )
    message = str(raised.value)
    assert message.startswith(
        "data/ppo_cartpole_2025_03_14_092653/ppo_cartpole_spec.json does not match the Settings"
    )
    assert "max_frame: spec has 200000" in message and "max_session: spec has 2" in message
    assert "num_envs" not in message and "log_frequency" not in message


# -- a run folder is accepted only when it covers the full max_frame -----------------------------


def _slm_lab_checkpoints(max_frame: int, num_envs: int, log_frequency: int) -> list[int]:
    """SLM-Lab's Session.run_rl clock, stepped: checkpoint when to_ckpt says so."""
    frames, frame = [], 0
    while frame < max_frame:
        frame += num_envs
        if frame % log_frequency < num_envs or frame == max_frame:
            frames.append(frame)
    return frames


@pytest.mark.parametrize("num_envs", [1, 3, 4, 16])
@pytest.mark.parametrize("log_frequency", [1, 7, 100, 500])
def test_final_checkpoint_frame_follows_slm_labs_clock(num_envs, log_frequency):
    for max_frame in range(max(log_frequency, num_envs) * 2, 2100, 37):
        expected = _slm_lab_checkpoints(max_frame, num_envs, log_frequency)[-1]
        assert final_checkpoint_frame(max_frame, num_envs, log_frequency) == expected
    assert final_checkpoint_frame(1001, 4, 500) == 1000  # below max_frame: no final checkpoint


def test_the_real_complete_folder_passes():
    folder = read_run_folder(REAL)
    assert run_budget(folder).last_frame == 5000 and run_budget(folder).sessions == 4
    require_complete(folder)
    assert trial_score(folder) == pytest.approx(25.982563)


def _kill_at(root: Path, checkpoints: dict[int, int]) -> None:
    """What SLM-Lab leaves when killed: session ``s``'s CSV holds its first ``checkpoints[s]``
    rows and the trial metrics were last computed from those sessions (analysis.analyze_trial)."""
    sessions = []
    for s, rows in checkpoints.items():
        csv = root / "info" / f"ppo_cartpole_arc_t0_s{s}_session_df_train.csv"
        lines = csv.read_text().splitlines(keepends=True)
        csv.write_text("".join(lines[: rows + 1]))
        sessions.append(session_metrics(pd.read_csv(csv), 0.0))
    metrics = trial_metrics(sessions)
    (root / REAL_METRICS).write_text(json.dumps(metrics))


@pytest.fixture
def real_copy(tmp_path) -> Path:
    return Path(shutil.copytree(REAL, tmp_path / REAL.name))


def test_a_killed_real_run_is_refused_in_one_line(real_copy):
    _kill_at(real_copy, {0: 5, 1: 5, 2: 4, 3: 5})
    folder = read_run_folder(real_copy)
    assert folder.kind == "train"
    with pytest.raises(BenchError) as raised:
        trial_score(folder)
    assert str(raised.value) == (
        f"{real_copy}/{REAL_METRICS}: frame reached 2500 of max_frame 5000 "
        "(last checkpoint 5000): the run did not finish"
    )


def test_interim_metrics_of_session_0s_last_checkpoint_are_refused(real_copy):
    # Session 0 finished and rewrote the trial metrics while session 3 was at frame 4000.
    _kill_at(real_copy, {0: 10, 1: 10, 2: 10, 3: 8})
    folder = read_run_folder(real_copy)
    assert folder.trial_metrics["scalar"]["frame"] == 5000
    with pytest.raises(BenchError, match=r"trial_metrics\.json: session 3: frame reached 4000 of"):
        require_complete(folder)


def test_a_missing_session_is_refused(real_copy):
    _kill_at(real_copy, {0: 10, 1: 10, 2: 10})
    with pytest.raises(BenchError, match=r"mean_returns holds 3 sessions, expected max_session 4"):
        require_complete(read_run_folder(real_copy))


def test_a_session_csv_behind_its_metrics_is_refused(real_copy):
    csv = real_copy / "info" / "ppo_cartpole_arc_t0_s2_session_df_train.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(BenchError) as raised:
        require_complete(read_run_folder(real_copy))
    assert str(raised.value) == (
        f"{csv}: frame reached 4500 of max_frame 5000 (last checkpoint 5000): "
        "the run did not finish"
    )


def test_scalar_only_metrics_are_checked_by_their_frame(real_copy):
    (real_copy / REAL_METRICS).unlink()
    scalar = real_copy / "info" / "ppo_cartpole_arc_t0_trial_metrics_scalar.json"
    scalar.write_text(scalar.read_text().replace('"frame": 5000.0', '"frame": 3000.0'))
    with pytest.raises(BenchError, match=r"_scalar\.json: frame reached 3000 of max_frame 5000"):
        trial_score(read_run_folder(real_copy))


def test_distributed_runs_split_the_budget_over_sessions(real_copy):
    for name in ("ppo_cartpole_arc_spec.json", "ppo_cartpole_arc_t0_spec.json"):
        path = real_copy / name
        spec = json.loads(path.read_text())
        spec["meta"]["distributed"] = "synced"
        spec["env"]["max_frame"] = 20000  # 5000 per session
        path.write_text(json.dumps(spec))
    budget = run_budget(read_run_folder(real_copy))
    assert (budget.max_frame, budget.last_frame) == (20000, 5000)
    require_complete(read_run_folder(real_copy))


@pytest.mark.parametrize(
    "value, shown", [("Infinity", "inf"), ("-Infinity", "-inf"), ("NaN", "nan")]
)
def test_non_finite_scores_are_refused(real_copy, value, shown):
    path = real_copy / REAL_METRICS
    data = json.loads(path.read_text())
    data["scalar"]["total_reward_ma"] = "SCORE"
    path.write_text(json.dumps(data).replace('"SCORE"', value))
    with pytest.raises(BenchError, match=rf"total_reward_ma is {shown}: expected a finite score$"):
        trial_score(read_run_folder(real_copy))


def test_errors_name_the_real_place_of_a_copied_folder(real_copy):
    metrics = real_copy / REAL_METRICS
    metrics.write_text(metrics.read_text()[:100])  # truncated
    shown = "results/store/SLM-Lab/benchmark-dev/data/ppo_cartpole_arc_2026_11_29_185430"
    with pytest.raises(BenchError) as raised:
        read_run_folder(real_copy, shown_as=shown)
    message = str(raised.value)
    assert message.startswith(f"{shown}/{REAL_METRICS}: invalid JSON at line ")
    assert str(real_copy) not in message and "\n" not in message
    (real_copy / "ppo_cartpole_arc_spec.json").write_text('{"agent": ')
    with pytest.raises(BenchError, match=rf"^{shown}/ppo_cartpole_arc_spec\.json: invalid JSON"):
        read_run_folder(real_copy, shown_as=shown)
