"""The real workflow, run by Snakemake: plans, bad inputs, and a real end-to-end build."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from workflow_helpers import (
    REPO,
    acrobot_ppo,
    make_workdir,
    planned_jobs,
    planned_outputs,
    snakemake,
    tiny_config,
)

CHAIN = [
    "validate_spec",
    "run_cell",
    "upload_run",
    "extract_metrics",
    "pull_run_folder",
    "write_row",
]
TABLE = {"write_benchmarks": 1, "install_table": 1, "all": 1}


def two_env_config() -> dict:
    config = tiny_config()
    config["envs"]["Acrobot-v1"] = acrobot_ppo()
    return config


# -- plans (fast) ------------------------------------------------------------------------------


def test_default_config_plans_the_whole_chain(tmp_path):
    workdir = make_workdir(tmp_path, yaml.safe_load((REPO / "config.yaml").read_text()))
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout
    jobs = planned_jobs(result.stdout)
    assert jobs == {
        "validate_spec": 3, "run_cell": 3, "upload_run": 3, "extract_metrics": 3,
        "pull_run_folder": 3, "write_row": 3, "plot_env": 1, **TABLE,
    }  # fmt: skip
    assert "reason: Missing output files" in result.stdout


def test_per_env_target_plans_one_env_only(tmp_path):
    workdir = make_workdir(tmp_path, two_env_config())
    result = snakemake(workdir, "-n", "results/Acrobot-v1/BENCHMARKS.md")
    assert result.returncode == 0, result.stdout
    outputs = planned_outputs(result.stdout)
    assert outputs and all("CartPole" not in out for out in outputs), outputs
    assert planned_jobs(result.stdout)["run_cell"] == 1


def test_config_typo_fails_with_one_line_naming_the_key(tmp_path):
    config = tiny_config(runer="embedded")
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if "runer" in line]
    allowed = ", ".join(
        sorted(yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())["properties"])
    )
    assert lines == [f"config.yaml: unknown key 'runer' at top level (allowed: {allowed})"]
    assert {"runner", "seed", "status_rule", "store"} <= set(allowed.split(", "))


def test_typo_inside_an_algorithm_entry_is_named(tmp_path):
    config = tiny_config()
    config["envs"]["CartPole-v1"]["algorithms"]["ppo"]["spec_nmae"] = "x"
    result = snakemake(make_workdir(tmp_path, config), "-n")
    assert result.returncode != 0
    assert "unknown key 'spec_nmae' at envs.CartPole-v1.algorithms.ppo" in result.stdout


CONDA_LINT = "Specify a conda environment or container for each rule"


def test_lint_is_clean_but_for_the_conda_lint(tmp_path):
    """Rules run the installed slm_bench package (no --use-conda: see README), so Snakemake's
    lint asking for a conda env per rule is the one lint allowed, as in `make lint`."""
    workdir = make_workdir(tmp_path, yaml.safe_load((REPO / "config.yaml").read_text()))
    result = snakemake(workdir, "--lint")
    lints = [line.strip() for line in result.stdout.splitlines() if line.startswith("    * ")]
    assert lints, result.stdout  # the lint ran and listed rules
    assert {lint.rstrip(".:") for lint in lints} == {f"* {CONDA_LINT}"}, result.stdout


# -- a real end-to-end build ------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny CartPole benchmark (PPO, A2C, DQN; 2000 frames x 4 sessions) built for real."""
    workdir = make_workdir(tmp_path_factory.mktemp("e2e"), tiny_config())
    result = snakemake(workdir)
    assert result.returncode == 0, result.stdout[-4000:]
    return workdir, result


def test_build_writes_benchmarks_md_with_three_rows(built):
    workdir, result = built
    text = (workdir / "results/BENCHMARKS.md").read_text()
    assert "#### 1.1 CartPole-v1" in text
    assert "**Settings**: max_frame 2000 | num_envs 4 | max_session 4 | log_frequency 500" in text
    assert "| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |" in text
    rows = [line for line in text.splitlines() if re.match(r"\| (DQN|A2C|PPO) \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["DQN", "A2C", "PPO"]
    for algo, row in zip(["dqn", "a2c", "ppo"], rows, strict=True):
        metrics = json.loads((workdir / f"results/CartPole-v1/{algo}/metrics.json").read_text())
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2] == f"{metrics['total_reward_ma']:.2f}"
        assert cells[4] == f"{algo}_cartpole"
        assert cells[5].startswith(f"[{metrics['data_folder']}](")
    plot = workdir / "results/plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    assert plot.stat().st_size > 10_000
    assert (
        "![CartPole-v1](plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png)" in text
    )


def test_build_shows_progress_and_keeps_the_chain_consistent(built):
    workdir, result = built
    assert re.search(r"\[CartPole-v1/ppo\] .*frame", result.stdout), "no progress lines"
    cell = workdir / "results/CartPole-v1/ppo"
    marker = json.loads((cell / "run.json").read_text())
    assert marker["runner"] == "embedded" and marker["data_folder"] and marker["ended_at"]
    pulled = cell / "hf_data" / "data" / marker["data_folder"]
    trial = json.loads(next(pulled.glob("info/*_t0_trial_metrics.json")).read_text())
    metrics = json.loads((cell / "metrics.json").read_text())
    assert f"{trial['scalar']['total_reward_ma']:.2f}" == f"{metrics['total_reward_ma']:.2f}"
    stored = workdir / "results/store/SLM-Lab/benchmark-dev/data" / marker["data_folder"]
    assert stored.is_dir() and not list(stored.rglob("*_optim.pt"))
    # The local run folder was kept until the store's copy was verified, then removed.
    upload = json.loads((cell / "upload.json").read_text())
    assert upload["data_folder"] == marker["data_folder"]
    assert not (workdir / marker["local_folder"]).exists()


def test_second_run_has_nothing_to_do(built):
    workdir, _ = built
    result = snakemake(workdir, "-n")
    assert result.returncode == 0
    assert planned_jobs(result.stdout) == {}
    assert "Nothing to be done" in result.stdout


def test_editing_one_spec_plans_exactly_its_chain(built, tmp_path):
    workdir, _ = built
    spec = workdir / "specs/a2c_classic.yaml"
    original = spec.read_text()
    try:
        edited = re.sub(r"gamma: [0-9.]+", "gamma: 0.97", original, count=1)
        assert edited != original
        spec.write_text(edited)
        result = snakemake(workdir, "-n")
        assert result.returncode == 0, result.stdout
        jobs = planned_jobs(result.stdout)
        assert jobs == {**dict.fromkeys(CHAIN, 1), "plot_env": 1, **TABLE}
        cell_outputs = [out for out in planned_outputs(result.stdout) if "/CartPole-v1/" in out]
        assert cell_outputs and all("/CartPole-v1/a2c/" in out for out in cell_outputs)
    finally:
        spec.write_text(original)
