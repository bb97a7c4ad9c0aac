"""Bad inputs and interruptions: one clear line each, nothing else lost or half-written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from process_helpers import Build
from workflow_helpers import (
    copy_tree,
    make_workdir,
    snakemake,
    tiny_config,
    trained_tree,
    tree_digest,
)

BAD_SPECS = {
    # file name -> (content, spec name, the line the user must see)
    "hardcoded.yaml": (
        "ppo_hard:\n  agent: {name: PPO, algorithm: {name: PPO}}\n"
        "  env: {name: CartPole-v1, num_envs: 4, max_frame: 2000}\n"
        "  meta: {max_session: 4, log_frequency: 500, max_trial: 1}\n",
        "ppo_hard",
        "env.max_frame is hard-coded",
    ),
    "mismatch.yaml": (
        "ppo_mismatch:\n  agent: {name: PPO, algorithm: {name: PPO}}\n"
        '  env: {name: CartPole-v1, num_envs: 2, max_frame: "${max_frame}"}\n'
        "  meta: {max_session: 4, log_frequency: 500, max_trial: 1}\n",
        "ppo_mismatch",
        "num_envs",
    ),
    "malformed.yaml": ("ppo_bad:\n  agent: {name: PPO\n  env: [\n", "ppo_bad", "not valid YAML"),
    "malformed.json": ('{"ppo_bad": {"agent": ', "ppo_bad", "not valid JSON"),
    "reinforce.yaml": (
        "reinforce_cartpole:\n"
        "  agent: {name: Reinforce, algorithm: {name: Reinforce, gamma: 0.99}}\n"
        '  env: {name: CartPole-v1, num_envs: 4, max_frame: "${max_frame}"}\n'
        "  meta: {max_session: 4, log_frequency: 500, max_trial: 1}\n",
        "reinforce_cartpole",
        "Reinforce is not supported by the embedded runner",
    ),
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def good_build(tmp_path_factory, tmp_path):
    """A copy of a tiny CartPole build (PPO, A2C) whose table the bad inputs must leave alone."""
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    return workdir, yaml.safe_load((workdir / "config.yaml").read_text())


def test_bad_inputs_fail_their_cells_only(good_build):
    workdir, config = good_build
    table = workdir / "results/BENCHMARKS.md"
    before = digest(table)
    good_cell = tree_digest(workdir / "results/CartPole-v1/a2c")
    algorithms = config["envs"]["CartPole-v1"]["algorithms"]
    for index, (name, (content, spec_name, _)) in enumerate(BAD_SPECS.items()):
        (workdir / "specs" / name).write_text(content)
        algorithms[f"bad{index}"] = {
            "label": f"BAD{index}",  # labels are unique per env
            "spec_file": f"specs/{name}",
            "spec_name": spec_name,
        }
    algorithms["unknown"] = {
        "label": "NOPE", "spec_file": "specs/a2c_classic.yaml", "spec_name": "a2c_nope"
    }  # fmt: skip
    algorithms["a2c"] = {
        "label": "A2C", "spec_file": "specs/a2c_classic.yaml", "spec_name": "a2c_cartpole"
    }  # fmt: skip
    make_workdir(workdir, config)

    result = snakemake(workdir, "--keep-going")

    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert errors, result.stdout[-3000:]
    for _, (_, _, expected) in BAD_SPECS.items():
        matching = [line for line in errors if expected in line]
        assert len(matching) == 1, (expected, errors)
    assert any("no spec named 'a2c_nope'" in line and "a2c_cartpole" in line for line in errors)
    # The good cell is untouched; the table was not rebuilt (one of its inputs failed).
    assert tree_digest(workdir / "results/CartPole-v1/a2c") == good_cell
    assert digest(table) == before
    # Nothing half-written for the failed cells.
    for index in range(len(BAD_SPECS)):
        cell = workdir / f"results/CartPole-v1/bad{index}"
        assert not (cell / "run.json").exists() and not (cell / "train.log").exists()


def test_sigkill_mid_training_then_rerun_completes(tmp_path):
    config = tiny_config()
    settings = config["envs"]["CartPole-v1"]["settings"]
    settings["max_frame"] = 20000
    config["envs"]["CartPole-v1"]["algorithms"] = {
        "ppo": config["envs"]["CartPole-v1"]["algorithms"]["ppo"]
    }
    workdir = make_workdir(tmp_path / "work", config)
    cell = workdir / "results/CartPole-v1/ppo"
    build = Build(workdir)  # dies with this test even if pytest is SIGKILLed
    partial = "results/CartPole-v1/ppo/train.log.partial"
    build.wait_until(lambda: build.log_has(partial, "frame", 3), "training", timeout=180)
    build.kill_group()  # Snakemake and its jobs; the runner's own group dies with its job
    # Nothing that looks complete was left behind.
    assert not (cell / "run.json").exists() and not (cell / "train.log").exists()
    store = workdir / "results/store/SLM-Lab/benchmark-dev/data"
    assert not store.exists() or not [p for p in store.iterdir() if not p.name.startswith(".")]

    assert snakemake(workdir, "--unlock").returncode == 0
    result = snakemake(workdir, "--rerun-incomplete")
    assert result.returncode == 0, result.stdout[-4000:]
    marker = json.loads((cell / "run.json").read_text())
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["data_folder"] == marker["data_folder"]
    assert metrics["frame"] == pytest.approx(20000, rel=0.01)
    assert (workdir / "results/BENCHMARKS.md").read_text().count("| PPO |") == 1
