"""The search block read with SLM-Lab's semantics; the budget rule; spec patches."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
import yaml

from slm_bench.config_model import BenchConfig
from slm_bench.errors import BenchError
from slm_bench.formats.settings import parse_settings_line
from slm_bench.formats.spec import resolve_spec, spec_names
from slm_bench.matrix.config import Cell, read_config
from slm_bench.runners.embedded.spec_reader import lookup
from slm_bench.search.patch import (
    changed_values,
    unified_diff,
    write_changed,
    write_values,
    yaml_scalar,
)
from slm_bench.search.space import read_space, rule_budget, trial_budget
from slm_bench.steps.search import apply_search

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "search" / "tiny_search.yaml"
A2C_ARC = FIXTURES / "slm-lab" / "specs" / "benchmark_arc" / "a2c" / "a2c_classic_arc.yaml"


def sample(space, seed=0, n=200):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    dists = {d.path: d.distribution() for d in space.dimensions}
    return [space.values(study.ask(dists).params) for _ in range(n)]


def test_every_slm_lab_distribution_samples_within_its_bounds():
    spec = {
        "search": {
            "a__uniform": [0.9, 0.99],
            "b__quniform": [3.2, 5.4, 0.2],
            "c__loguniform": [1e-4, 1e-2],
            "d__qloguniform": [1e-4, 1e-1, 5e-5],
            "e__randint": [-9, 15],
            "f__qrandint": [-21, 12, 3],
            "g__lograndint": [1, 10],
            "h__qlograndint": [2, 10, 2],
            "i__choice": [16, 32, 64],
            "j__randn": [10, 2],
            "k": {"nested__qrandn": [10, 2, 0.5]},
        },
        **dict.fromkeys("abcdefghij", 0),  # a searched key must be in the spec
        "k": {"nested": 0},
    }
    space = read_space(spec, "spec")
    assert space.paths[-1] == "k.nested"  # nested blocks flatten with dots, as util.flatten_dict
    for v in sample(space):
        assert 0.9 <= v["a"] <= 0.99 and isinstance(v["a"], float)
        assert 3.2 - 1e-9 <= v["b"] <= 5.4 + 1e-9 and abs(v["b"] / 0.2 - round(v["b"] / 0.2)) < 1e-6
        assert 1e-4 <= v["c"] <= 1e-2
        assert abs(v["d"] / 5e-5 - round(v["d"] / 5e-5)) < 1e-6
        assert -9 <= v["e"] < 15 and isinstance(v["e"], int)  # randint excludes the upper bound
        assert -21 <= v["f"] <= 12 and v["f"] % 3 == 0  # qrandint includes it
        assert 1 <= v["g"] < 10
        assert v["h"] in (2, 4, 6, 8, 10)
        assert v["i"] in (16, 32, 64)
        assert abs(v["k.nested"] / 0.5 - round(v["k.nested"] / 0.5)) < 1e-9
    draws = [v["j"] for v in sample(space, n=400)]
    mean = sum(draws) / len(draws)
    assert 9.5 < mean < 10.5  # randn(10, 2) centred on its mean


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"gamma__grid_search": [0.9, 0.99]}, "grid_search is not supported"),
        ({"gamma__normal": [0, 1]}, "unknown distribution 'normal'"),
        ({"gamma": [0, 1]}, "expected path.to.key__DIST"),
        ({"gamma__uniform": [0.99, 0.9]}, "expected low < high"),
        ({"lr__loguniform": [0, 1]}, "needs low > 0"),
        ({"lr__uniform": [1]}, "uniform expects 2 numbers"),
    ],
)
def test_bad_search_blocks_are_one_line_errors(block, fragment):
    with pytest.raises(BenchError) as error:
        read_space({"search": block}, "specs/x.yaml: x")
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_spec_without_search_block_names_what_to_add():
    with pytest.raises(BenchError, match="add one to the spec"):
        read_space({"agent": {}}, "specs/x.yaml: x")


def test_budget_rule_and_warning_over_it():
    assert [rule_budget(n) for n in (1, 2, 3, 4, 6)] == [4, 8, 8, 16, 24]
    spec = {"a": 0, "b": 0, "search": {"a__uniform": [0, 1], "b__uniform": [0, 1]}}
    space = read_space(spec, "s")
    assert trial_budget({"meta": {}}, space, "s") == (8, [])
    assert trial_budget({"meta": {"max_trial": 6}}, space, "s") == (6, [])
    trials, warnings = trial_budget({"meta": {"max_trial": 30}}, space, "s")
    assert trials == 30 and "exceeds the budget rule" in warnings[0]


def test_real_slm_lab_search_blocks_parse():
    spec = resolve_spec(A2C_ARC, "a2c_gae_lunar_arc")
    space = read_space(spec, "a2c_gae_lunar_arc")
    assert "agent.algorithm.gamma" in space.paths and len(space.dimensions) == 6
    trials, warnings = trial_budget(spec, space, "a2c_gae_lunar_arc")
    assert trials == 8 and warnings == []  # meta.max_trial 8, under the rule's 24


def test_yaml_scalars_read_back_as_the_same_value():
    for value in (1e-05, 0.000123, 0.99, 3, True, 2.5e-10, 1e20, "x y"):
        assert yaml.safe_load(f"k: {yaml_scalar(value)}")["k"] == value


def test_patch_writes_only_the_searched_keys_into_the_spec_own_mapping(tmp_path):
    spec_file = tmp_path / "tiny_search.yaml"
    shutil.copy(TINY, spec_file)
    text = spec_file.read_text()
    # gamma comes from the shared anchor: a local key is added beside the merge, and the anchor
    # (shared with other specs) keeps 0.99. A key inside an inline flow mapping is refused.
    flow = text.replace(
        "optim_spec:\n        name: Adam\n        lr: 3.0e-4", "optim_spec: {lr: 3.0e-4}"
    )
    lr = {"agent.net.optim_spec.lr": 0.00123}
    with pytest.raises(BenchError, match="write the value by hand"):
        write_values(flow, spec_file, "tiny_search.yaml", "ppo_tiny", lr, {"max_frame": "1000"})
    new = write_values(
        text, spec_file, "tiny_search.yaml", "ppo_tiny", {"agent.algorithm.gamma": 0.975},
        {"max_frame": "1000"},
    )  # fmt: skip
    diff = unified_diff(text, new, "tiny_search.yaml")
    added = [line for line in diff.splitlines() if line.startswith("+") and "+++" not in line]
    removed = [line for line in diff.splitlines() if line.startswith("-") and "---" not in line]
    assert added == ["+      gamma: 0.975"] and removed == []
    assert "${max_frame}" in new and "gamma: 0.99" in new  # placeholder and anchor untouched
    spec_file.write_text(new)
    body = resolve_spec(spec_file, "ppo_tiny", {"max_frame": "1000"})
    assert body["agent"]["algorithm"]["gamma"] == 0.975


def test_patch_replaces_a_local_value_in_place_keeping_its_comment(tmp_path):
    spec_file = tmp_path / "tiny_search.yaml"
    text = TINY.read_text().replace("clip_grad_val: 0.5\n", "clip_grad_val: 0.5  # clipped\n")
    spec_file.write_text(text)
    sets = {"max_frame": "1000"}
    values = {"agent.net.clip_grad_val": 1.0}
    new = write_values(text, spec_file, "tiny_search.yaml", "ppo_tiny", values, sets)
    assert new == text.replace("clip_grad_val: 0.5  # clipped\n", "clip_grad_val: 1.0  # clipped\n")


def test_patch_writes_out_a_merged_sub_mapping_whole(tmp_path):
    """actor_optim_spec comes from the net anchor: a local one replaces it (YAML merges are
    shallow), so it is written out with every key it had; the anchor and its users keep theirs."""
    spec_file = tmp_path / "a2c.yaml"
    shutil.copy(FIXTURES.parent.parent / "specs" / "a2c_classic.yaml", spec_file)
    text = spec_file.read_text()
    sets = {"max_frame": "200000"}
    cartpole, acrobot = (resolve_spec(spec_file, n, sets) for n in ("a2c_cartpole", "a2c_acrobot"))
    new = write_values(
        text, spec_file, "a2c.yaml", "a2c_cartpole", {"agent.net.actor_optim_spec.lr": 0.0021}, sets
    )
    spec_file.write_text(new)
    cartpole["agent"]["net"]["actor_optim_spec"]["lr"] = 0.0021
    assert resolve_spec(spec_file, "a2c_cartpole", sets) == cartpole
    assert resolve_spec(spec_file, "a2c_acrobot", sets) == acrobot
    assert new.count("${max_frame}") == text.count("${max_frame}")


NOT_SET = object()
PROJECT_SPECS = sorted((Path(__file__).parents[1] / "specs").glob("*.yaml"))


@pytest.mark.parametrize("spec_file", PROJECT_SPECS, ids=lambda p: p.name)
def test_the_projects_search_blocks_are_in_budget_and_patchable(spec_file, tmp_path):
    """Every search block shipped in specs/: within the budget rule (no warning), each searched
    key set in the resolved spec (a patch overrides a value, never invents a key), and the
    patch for its lower bounds re-resolves to exactly those values."""
    searched = 0
    for name in spec_names(spec_file):
        spec = resolve_spec(spec_file, name, {"max_frame": 1000})
        if "search" not in spec:
            continue
        searched += 1
        where = f"{spec_file.name}: {name}"
        space = read_space(spec, where)
        planned, warnings = trial_budget(spec, space, where)
        assert warnings == [] and planned == rule_budget(len(space.dimensions)), where
        for path in space.paths:
            assert lookup(spec, path, NOT_SET) is not NOT_SET, f"{where}: {path} is not set"
        copy = Path(shutil.copy(spec_file, tmp_path / spec_file.name))  # fresh for each spec
        values = {d.path: d.args[0] for d in space.dimensions}
        sets = {"max_frame": "1000"}
        copy.write_text(write_values(copy.read_text(), copy, spec_file.name, name, values, sets))
        patched = resolve_spec(copy, name, {"max_frame": 1000})
        for path, value in values.items():
            assert lookup(patched, path, NOT_SET) == value, f"{where}: {path}"
    assert searched or "search:" not in spec_file.read_text()


def _git(root: Path, *args: str) -> str:
    run = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return run.stdout.strip()


def _searched_checkout(tmp_path: Path, monkeypatch) -> tuple[Cell, BenchConfig, Path]:
    """tiny_search.yaml committed in a git checkout, as the cell apply_search writes into."""
    root = tmp_path / "SLM-Lab"
    (root / "specs").mkdir(parents=True)
    shutil.copy(TINY, root / "specs" / "tiny_search.yaml")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@example.org")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "specs")
    settings = parse_settings_line("max_frame 2e3 | num_envs 1 | max_session 1")
    cell = Cell(
        env_id="CartPole-v1", env="CartPole-v1", algo="ppo", label="PPO",
        spec_file="specs/tiny_search.yaml", spec_path=root / "specs" / "tiny_search.yaml",
        spec_name="ppo_tiny", sets={"max_frame": "2000"}, settings=settings,
    )  # fmt: skip
    return cell, read_config({"checkout": {"root": str(root)}}), root


def _search_outputs(cell: Cell, values: dict, folder: Path) -> tuple[Path, Path]:
    """best.json and spec.patch as search_cell writes them for ``values``."""
    text = cell.spec_path.read_text()
    args = (cell.spec_path, cell.spec_file, cell.spec_name, values, cell.sets)
    new, _ = write_changed(text, *args)
    best, patch = folder / "best.json", folder / "spec.patch"
    best.write_text(json.dumps({"values": values, "trial": 3, "total_reward_ma": 180.5}))
    patch.write_text(unified_diff(text, new, cell.spec_file))
    return best, patch


def test_a_search_patch_writes_only_the_values_the_spec_does_not_hold(tmp_path, monkeypatch):
    """gamma and training_epoch come from the shared anchor: gamma's chosen 0.99 is the anchor's
    value and training_epoch's 2.0 is its int 2 (a CSV's float column), so neither is written;
    lam (anchored too) and lr (the spec's own) differ and are the whole patch. Applied in a
    checkout, the spec resolves to every chosen value and is committed."""
    cell, config, root = _searched_checkout(tmp_path, monkeypatch)
    values = {
        "agent.algorithm.gamma": 0.99,
        "agent.algorithm.training_epoch": 2.0,
        "agent.algorithm.lam": 0.97,
        "agent.net.optim_spec.lr": 0.00123,
    }
    spec = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
    assert changed_values(spec, values) == {
        "agent.algorithm.lam": 0.97, "agent.net.optim_spec.lr": 0.00123
    }  # fmt: skip
    # typed: a bool is not the int 1, a string is not the number, an absent key differs
    assert changed_values({"a": 1, "b": "0.5", "c": None}, {"a": True, "b": 0.5, "d": None}) == {
        "a": True, "b": 0.5, "d": None
    }  # fmt: skip
    best, patch = _search_outputs(cell, values, tmp_path)
    diff = patch.read_text().splitlines()
    added = [line for line in diff if line.startswith("+") and "+++" not in line]
    removed = [line for line in diff if line.startswith("-") and "---" not in line]
    assert added == ["+      lam: 0.97", "+        lr: 0.00123  # searched below"]
    assert removed == ["-        lr: 3.0e-4  # searched below"]
    head = _git(root, "rev-parse", "HEAD")
    lines: list[str] = []
    apply_search(cell, config, best, patch, tmp_path / "applied.json", lines.append)
    patched = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
    for path, value in values.items():
        assert lookup(patched, path, NOT_SET) == value, path
    assert type(patched["agent"]["algorithm"]["training_epoch"]) is int  # the spec keeps its int
    assert "gamma: 0.99" in cell.spec_path.read_text()  # the anchor, untouched
    applied = json.loads((tmp_path / "applied.json").read_text())
    assert applied["values"] == values and applied["written"] == changed_values(spec, values)
    assert _git(root, "rev-parse", "HEAD~1") == head and applied["commit"] != head
    assert _git(root, "status", "--porcelain") == ""
    assert lines == ["CartPole-v1/ppo: wrote the best values into specs/tiny_search.yaml; the"
                     " next build retrains it"]  # fmt: skip


def test_an_all_equal_search_leaves_an_empty_patch_that_applies_as_a_no_op(tmp_path, monkeypatch):
    """Every chosen value is what the spec already holds: spec.patch is empty, and applying it
    says so in one line, leaves the spec byte-identical and commits nothing; best.json and
    applied.json still record every chosen value. An edit since the search is still refused."""
    cell, config, root = _searched_checkout(tmp_path, monkeypatch)
    values = {"agent.algorithm.gamma": 0.99, "agent.net.optim_spec.lr": 3.0e-4}
    best, patch = _search_outputs(cell, values, tmp_path)
    assert patch.read_text() == ""
    text, head = cell.spec_path.read_bytes(), _git(root, "rev-parse", "HEAD")
    lines: list[str] = []
    apply_search(cell, config, best, patch, tmp_path / "applied.json", lines.append)
    assert cell.spec_path.read_bytes() == text
    assert _git(root, "rev-parse", "HEAD") == head and _git(root, "status", "--porcelain") == ""
    applied = json.loads((tmp_path / "applied.json").read_text())
    assert applied["values"] == values and applied["written"] == {} and "commit" not in applied
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0] == (
        f"CartPole-v1/ppo: {patch} is empty: specs/tiny_search.yaml already holds the chosen"
        " values; nothing written or committed, nothing to retrain"
    )
    cell.spec_path.write_text(text.decode().replace("gamma: 0.99", "gamma: 0.95"))
    with pytest.raises(BenchError, match="changed since the search wrote its spec.patch"):
        apply_search(cell, config, best, patch, tmp_path / "again.json", lines.append)
    assert not (tmp_path / "again.json").exists()
