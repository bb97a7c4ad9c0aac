"""SLM-Lab run folders: layout paths, train/search detection, metrics with NaN, Settings checks."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.run_folder import (
    FOLDER_TS_RE,
    RunLayout,
    check_settings,
    folder_name,
    folder_prefix,
    load_json,
    read_run_folder,
    require_train,
    spec_settings,
    trial_score,
)
from slm_bench.settings import parse_settings_line

FIXTURES = Path(__file__).parent / "fixtures" / "run_folders"
TRAIN = FIXTURES / "ppo_cartpole_2025_03_14_092653"
SEARCH = FIXTURES / "ppo_cartpole_2025_03_15_101500"
NAN = FIXTURES / "sac_pendulum_2025_03_17_120000"


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
