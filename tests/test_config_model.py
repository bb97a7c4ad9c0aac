"""The typed config (slm_bench/config_model.py): one field per schema key, frozen, built from
every config the project and its tests use; max_frame one type (Frames) from the config to the
runner's argv; runner and store chosen from their kinds in one place."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from slm_lab_checkout import build_checkout
from workflow_helpers import REPO, tiny_config

from slm_bench.config_model import (
    BenchConfig,
    CheckoutOptions,
    DstackOptions,
    HfOptions,
    LocalStoreOptions,
    PublishOptions,
    RunnerKind,
    SlmLabOptions,
    SlurmOptions,
    StoreKind,
    plain,
)
from slm_bench.errors import BenchError
from slm_bench.formats.settings import Frames, Settings, parse_number
from slm_bench.matrix.config import Cell, build_matrix, load_config, read_config
from slm_bench.runners import RunRequest, make_runner, runner_options
from slm_bench.runners.process import ProcessRunner
from slm_bench.steps.cell import cell_run_request
from slm_bench.stores import make_store, store_from_config

SCHEMAS = REPO / "schemas"


def schema(name: str) -> dict:
    return yaml.safe_load((SCHEMAS / name).read_text(encoding="utf-8"))


def field_names(cls) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


# -- every schema key is a field, and every field a schema key --------------------------------


def test_every_schema_key_maps_to_a_field_and_back():
    config = schema("config.schema.yaml")["properties"]
    # and ``source``, not a key: which file set each key, for error lines
    assert set(config) | {"source"} == field_names(BenchConfig)
    assert "source" not in config
    sections = {
        "checkout": CheckoutOptions,
        "local_store": LocalStoreOptions,
        "hf": HfOptions,
        "publish": PublishOptions,
        "slm_lab": SlmLabOptions,
        "slurm": SlurmOptions,
    }
    for key, cls in sections.items():
        assert set(config[key]["properties"]) == field_names(cls), key
    assert set(schema("dstack.schema.yaml")["properties"]) == field_names(DstackOptions)


def test_the_checkout_options_defaults_are_the_schemas():
    properties = schema("config.schema.yaml")["properties"]["checkout"]["properties"]
    built = CheckoutOptions(root="x")
    for field in dataclasses.fields(CheckoutOptions):
        if field.name != "root":
            assert plain(getattr(built, field.name)) == properties[field.name]["default"]


def test_a_key_the_model_lacks_fails_before_any_job(tmp_path):
    config = load_config(tiny_config())
    with pytest.raises(KeyError, match=r"BenchConfig: config keys without a field \['renamed'\]"):
        BenchConfig.from_validated({**config, "renamed": 1})
    missing = {key: value for key, value in config.items() if key != "title"}
    with pytest.raises(KeyError, match=r"fields without a config key \['title'\]"):
        BenchConfig.from_validated(missing)
    hf = {**config, "hf": {**config["hf"], "dev_repo_id": "a/b"}}
    with pytest.raises(KeyError, match=r"HfOptions: config keys without a field \['dev_repo_id'\]"):
        BenchConfig.from_validated(hf)


def test_a_typod_attribute_is_an_error_not_a_default():
    typed = read_config(tiny_config())
    with pytest.raises(AttributeError):
        typed.tittle  # noqa: B018 - the read is the test
    with pytest.raises(TypeError):  # read by attribute only: no key falls back to a default
        typed["tittle"]


# -- built from every config the project and its tests use ------------------------------------


def project_configs() -> list[tuple[str, dict]]:
    names = ("config.yaml", "configs/classic.yaml")
    return [(name, yaml.safe_load((REPO / name).read_text(encoding="utf-8"))) for name in names]


TEST_CONFIGS = [
    ("tiny", tiny_config()),
    ("tiny seeded", tiny_config(seed=7, status_rule="baseline", max_frame_policy="warn")),
    ("slm-lab", tiny_config(runner="slm-lab", slm_lab={"command": "slm-lab"})),
    ("dstack", tiny_config(runner="dstack", store="hf", dstack={"hardware": "gpu"})),
    ("slurm", tiny_config(slurm={"partition": "gpu", "env_hardware": {"CartPole-v1": "cpu"}})),
]


@pytest.mark.parametrize(("name", "raw"), project_configs() + TEST_CONFIGS)
def test_built_from_each_config(name, raw, monkeypatch):
    monkeypatch.chdir(REPO)  # the project's configs name its specs/
    validated = load_config(copy.deepcopy(raw), name)
    typed = BenchConfig.from_validated(validated)
    assert typed.runner == RunnerKind(validated["runner"])
    assert typed.store == StoreKind(validated["store"])
    for key in validated:  # each value as validated, typed
        assert plain(getattr(typed, key)) == validated[key], key
    assert build_matrix(typed).cells == build_matrix(validated).cells


def test_built_from_a_checkout_config(tmp_path):
    root = build_checkout(tmp_path / "SLM-Lab")
    typed = read_config({"checkout": {"root": str(root), "frame_budgets": "settings"}})
    assert typed.checkout == CheckoutOptions(str(root), frame_budgets="settings")
    assert typed.envs is None and typed.spec_dir == root
    assert typed.max_frame_policy == "warn"  # the checkout's default
    assert build_matrix(typed).cells


# -- frozen ------------------------------------------------------------------------------------


def test_the_config_is_frozen_all_the_way_down():
    typed = read_config(tiny_config(slurm={"env_hardware": {"CartPole-v1": "gpu"}}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.runner = RunnerKind.DSTACK  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.hf.dev_repo = "x/y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        typed.slurm.env_hardware["CartPole-v1"] = "cpu"  # type: ignore[index]
    with pytest.raises(TypeError):
        typed.envs["CartPole-v1"]["target"] = "> 1"  # type: ignore[index]
    assert isinstance(typed.dstack.env, tuple)


# -- max_frame: one type from the config to the runner's argv ---------------------------------


@pytest.mark.parametrize(
    ("written", "frames", "line", "argv"),
    [
        ("2e5", 200_000, "2e5", "200000"),
        (200000, 200_000, "2e5", "200000"),
        (200000.0, 200_000, "2e5", "200000"),
        ("10e6", 10_000_000, "10e6", "10000000"),
        ("1.5e6", 1_500_000, "15e5", "1500000"),
        ("100M", 100_000_000, "100e6", "100000000"),
        (2000, 2000, "2000", "2000"),
    ],
)
def test_max_frame_round_trips_from_the_config_to_the_argv(
    written, frames, line, argv, tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    raw = tiny_config()
    raw["envs"]["CartPole-v1"]["settings"]["max_frame"] = written
    config = read_config(raw)
    cell = build_matrix(config).cell("CartPole-v1", "ppo")
    assert type(cell.max_frame) is Frames and cell.max_frame == frames
    assert cell.settings.line().startswith(f"max_frame {line} |")
    assert cell.max_frame.notation == line and parse_number(line) == frames
    assert cell.sets["max_frame"] == argv  # the -s text, in params and spec.json
    assert repr(cell.max_frame) == str(cell.max_frame) == json.dumps(cell.max_frame) == argv
    again = Cell.from_params(cell.as_params(run_only=True), config)  # what the job runs with
    assert type(again.max_frame) is Frames and again.max_frame == cell.max_frame
    request = cell_run_request(again, config, tmp_path, tmp_path / "log", tmp_path / "j", 1, "f")
    assert type(request.max_frame) is Frames and request.max_frame == frames
    runner = make_runner(config.runner, runner_options(config, 1))
    assert isinstance(runner, ProcessRunner)
    command = runner.argv(request, request.spec_file)
    assert command[command.index(f"max_frame={argv}") - 1] == "-s"


def test_a_row_budget_is_frames_too():
    settings = Settings.from_mapping({"max_frame": "10e6"}).with_budget("2e6")
    assert type(settings.max_frame) is Frames and settings.max_frame == 2_000_000
    ranged = Settings.from_mapping({"max_frame": "4e6-10e6"}).max_frame
    assert type(ranged.low) is Frames and str(ranged) == "4e6-10e6"


# -- runner and store: chosen from their kinds, in one place ----------------------------------


def test_each_runner_kind_builds_its_runner(tmp_path):
    made = {}
    for kind in RunnerKind:
        top = {"runner": kind.value, "spec_root": str(tmp_path)}
        if kind is RunnerKind.DSTACK:
            top["store"] = "hf"
        config = read_config(tiny_config(**top))
        made[kind] = make_runner(config.runner, runner_options(config, 2))
    assert {kind: runner.name for kind, runner in made.items()} == {
        kind: kind.value for kind in RunnerKind
    }
    with pytest.raises(BenchError, match=r"^config.yaml: runner: unknown runner 'sb3' \("):
        make_runner("sb3")


def test_each_store_kind_builds_its_store(tmp_path):
    local = read_config(tiny_config(local_store={"root": str(tmp_path)}))
    assert store_from_config(local).name == "local"
    hf = read_config(tiny_config(store="hf", hf={"dev_repo": "me/dev"}))
    assert (store_from_config(hf).name, store_from_config(hf).repo) == ("hf", "me/dev")
    with pytest.raises(BenchError, match=r"^config.yaml: store: unknown store 's3' \("):
        make_store("s3")


def test_no_module_or_rule_reads_the_config_as_a_mapping():
    """The package and the rules read the typed object's attributes; only the validation in
    config.py and the model's constructor see the mapping."""
    pattern = re.compile(r"(?<![.\w])config(\[|\.get\()")
    readers = [
        path
        for path in [*(REPO / "slm_bench").rglob("*.py"), *(REPO / "rules").glob("*.smk")]
        if path.name not in ("config.py", "config_model.py")
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    # a dstack task's own YAML (`config["name"]`), not the pipeline's config
    dstack_task = ["slm_bench/runners/dstack/cell_run.py", "slm_bench/runners/dstack/task.py"]
    assert sorted(str(p.relative_to(REPO)) for p in readers) == dstack_task


def test_run_requests_take_the_runner_kinds_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    for kind, absolute in ((RunnerKind.EMBEDDED, True), (RunnerKind.SLM_LAB, False)):
        config = read_config(tiny_config(runner=kind.value))
        cell = build_matrix(config).cell("CartPole-v1", "ppo")
        request = cell_run_request(cell, config, tmp_path, tmp_path / "l", tmp_path / "j", 1, "f")
        assert Path(request.spec_file).is_absolute() is absolute
        assert isinstance(request, RunRequest)
    assert RunnerKind.DSTACK.is_remote and not RunnerKind.EMBEDDED.is_remote
