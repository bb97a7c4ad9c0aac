"""A real SLM-Lab checkout as the source of the matrix: plan, audit, run, update, commit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import planned_jobs, snakemake

from slm_bench.config_model import CheckoutOptions, FrameBudgets
from slm_bench.errors import BenchError
from slm_bench.matrix.checkout import commit_message, derive_envs

HERE = Path(__file__).resolve().parent
OWN = HERE / "fixtures" / "checkout"
SLM_LAB = HERE / "fixtures" / "slm-lab"


def real_checkout(root: Path) -> Path:
    """A directory laid out like an SLM-Lab checkout, from the real files in the test fixtures."""
    (root / "docs").mkdir(parents=True)
    shutil.copyfile(SLM_LAB / "BENCHMARKS.md", root / "docs" / "BENCHMARKS.md")
    shutil.copytree(SLM_LAB / "specs", root / "slm_lab" / "spec")
    return root


def own_checkout(root: Path) -> Path:
    """A tiny checkout (one runnable row) in a git repository of its own."""
    (root / "docs").mkdir(parents=True)
    spec_dir = root / "slm_lab" / "spec" / "benchmark"
    spec_dir.mkdir(parents=True)
    shutil.copyfile(OWN / "BENCHMARKS.md", root / "docs" / "BENCHMARKS.md")
    shutil.copyfile(OWN / "ppo_tiny.yaml", spec_dir / "ppo_tiny.yaml")
    shutil.copyfile(OWN / "reinforce.yaml", spec_dir / "reinforce.yaml")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "initial"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True
        )
    return root


def test_real_checkout_derives_planned_and_skipped_rows(tmp_path):
    root = real_checkout(tmp_path / "SLM-Lab")
    envs, skipped = derive_envs(CheckoutOptions(str(root), "docs/BENCHMARKS.md"))
    planned = sum(len(entry["algorithms"]) for entry in envs.values())
    assert planned + len(skipped) == 292  # every result row is either planned or listed
    assert planned == 31  # the rows whose spec files the fixtures hold
    assert all(row.reason.startswith("spec file not found") for row in skipped)
    cartpole = envs["CartPole-v1"]
    assert (
        cartpole["settings"].line()
        == "max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"
    )
    assert cartpole["target"] == "> 400"
    labels = [row["label"] for row in cartpole["algorithms"].values()]
    assert labels == ["REINFORCE", "SARSA", "DQN", "DDQN+PER", "A2C", "PPO", "SAC", "CrossQ"]
    # A spec shared across envs gets `-s env=...`; one with its own env does not.
    hopper = next(iter(envs["Hopper-v5"]["algorithms"].values()))
    assert hopper["sets"] == {"env": "Hopper-v5"}
    assert cartpole["algorithms"]["ppo_cartpole_arc"]["sets"] == {}


def test_real_checkout_rows_get_their_documented_frame_budgets(tmp_path):
    root = real_checkout(tmp_path / "SLM-Lab")
    # SLM-Lab's own SAC MuJoCo spec file is not in the fixtures: a stand-in with the real
    # sac_ant_arc's shape (env and max_frame hard-coded, no ${...}).
    sac = root / "slm_lab" / "spec" / "benchmark_arc" / "sac" / "sac_mujoco_arc.yaml"
    sac.write_text(
        "sac_ant_arc:\n"
        "  agent: {name: SoftActorCritic, algorithm: {name: SoftActorCritic}}\n"
        "  env: {name: Ant-v5, num_envs: 16, max_t: null, max_frame: 2000000}\n"
        "  meta: {distributed: false, log_frequency: 10000, max_session: 4, max_trial: 1}\n"
    )
    envs, skipped = derive_envs(CheckoutOptions(str(root), "docs/BENCHMARKS.md"))
    ant = envs["Ant-v5"]["algorithms"]
    assert ant["sac_ant_arc"]["max_frame"] == 2_000_000  # the MAX_FRAME table's 2e6
    assert "max_frame" not in ant["ppo_ant_arc"]  # its budget is the Settings line's 10e6
    pendulum = envs["InvertedPendulum-v5"]["algorithms"]["ppo_inverted_pendulum_arc"]
    assert pendulum["max_frame"] == 4_000_000  # below the env's 10e6, as the table documents
    # The spec list's "max_frame=2e6" for Atari SAC: every Atari SAC row (spec file missing here)
    assert any(r.spec_name == "sac_atari_arc" for r in skipped)
    # policy "settings": the budgets are ignored
    strict, _ = derive_envs(
        CheckoutOptions(str(root), "docs/BENCHMARKS.md", frame_budgets=FrameBudgets.SETTINGS)
    )
    assert "max_frame" not in strict["Ant-v5"]["algorithms"]["sac_ant_arc"]
    assert planned_count(envs) == planned_count(strict) == 32
    with pytest.raises(BenchError, match="checkout.frame_budgets: 'loose' is not one of"):
        derive_envs(CheckoutOptions(str(root), "docs/BENCHMARKS.md", frame_budgets="loose"))


def planned_count(envs: dict) -> int:
    return sum(len(entry["algorithms"]) for entry in envs.values())


def test_older_layout_checkout_merges_tables_and_lists_unread_ones(tmp_path):
    root = tmp_path / "SLM-Lab"
    (root / "docs").mkdir(parents=True)
    shutil.copyfile(HERE / "fixtures" / "benchmarks" / "older_layouts.md", root / "docs" / "B.md")
    envs, skipped = derive_envs(CheckoutOptions(str(root), "docs/B.md"))
    assert envs == {}  # no spec files here: every row is listed instead
    lines = [row.line() for row in skipped]
    assert "docs/B.md line 45: result table | Algorithm | Status |" in lines[0]
    assert "docs/B.md line 86: table | Game | Return | Spec | Folder | looks like" in lines[1]
    # Pong's rows from both Atari tables (one per algorithm) belong to one env
    assert [(r.env_id, r.spec_name) for r in skipped if r.env_id == "ALE/Pong-v5"] == [
        ("ALE/Pong-v5", "ppo_atari"),
        ("ALE/Pong-v5", "sac_atari"),
    ]
    assert len(skipped) == 2 + 3 + 2 + 4


def test_real_checkout_plans_with_reasons_and_audits(tmp_path):
    root = real_checkout(tmp_path / "SLM-Lab")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump({"checkout": {"root": str(root)}}))

    plan = snakemake(workdir, "-n")
    assert plan.returncode == 0, plan.stdout[-3000:]
    jobs = planned_jobs(plan.stdout)
    assert jobs["validate_spec"] == 31 and jobs["run_cell"] == 31 and jobs["write_benchmarks"] == 1
    assert plan.stdout.count("slm-bench: row not planned: ") == 261
    assert "reason: Missing output files" in plan.stdout

    phase = snakemake(workdir, "-n", "results/phases/phase-1-classic-control/BENCHMARKS.md")
    assert phase.returncode == 0, phase.stdout[-3000:]
    outputs = [line for line in phase.stdout.splitlines() if "output: results/" in line]
    assert outputs and all(
        any(env in line for env in ("CartPole", "Acrobot", "Pendulum", "phase-1"))
        for line in outputs
    )

    audit = snakemake(workdir, "results/audit.md", "--cores", "1")
    assert audit.returncode == 0, audit.stdout[-3000:]
    report = (workdir / "results/audit.md").read_text()
    assert report.startswith("# Spec audit\n\n292 rows: ")
    # Real Classic Control arc specs hard-code max_frame equal to their Settings: a warning.
    assert "| CartPole-v1 | PPO | slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml |" in report
    assert "| warning | " in report and "hard-coded" in report
    assert "## Status: hand-set vs computed" in report


def test_hard_coded_max_frame_that_differs_is_an_error_even_under_warn(tmp_path):
    root = own_checkout(tmp_path / "SLM-Lab")
    doc = root / "docs" / "BENCHMARKS.md"
    doc.write_text(doc.read_text().replace("max_frame 2000 |", "max_frame 3000 |"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {"checkout": {"root": str(root), "envs": ["CartPole-v1"]}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "results/CartPole-v1/ppo_cartpole_tiny/spec.json")
    assert result.returncode != 0
    assert "max_frame: spec has 2000, Settings line says 3000" in result.stdout


def test_slm_lab_runner_missing_command_says_what_to_do(tmp_path):
    root = own_checkout(tmp_path / "SLM-Lab")
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "runner": "slm-lab",
        "slm_lab": {"command": "slm-lab-not-installed"},
        "checkout": {"root": str(root), "envs": ["CartPole-v1"]},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir)
    assert result.returncode != 0
    assert (
        "error: runner slm-lab: command 'slm-lab-not-installed' not found; install SLM-Lab"
        in result.stdout
    )
    assert "or choose runner: embedded" in result.stdout


def test_checkout_run_updates_one_row_and_commits_locally(tmp_path, monkeypatch):
    root = own_checkout(tmp_path / "SLM-Lab")
    original = (root / "docs" / "BENCHMARKS.md").read_text()
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("SLM_LAB_STANDIN_CALLS", str(calls))
    monkeypatch.setenv("SLM_BENCH_PYTHON", sys.executable)
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "runner": "slm-lab",
        "slm_lab": {"command": str(OWN / "slm-lab")},
        "checkout": {"root": str(root)},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    built = snakemake(workdir)
    assert built.returncode == 0, built.stdout[-4000:]
    # The runner ran `slm-lab run` in the checkout, with the checkout-relative spec path.
    cwd, *argv = calls.read_text().split()
    assert Path(cwd) == root
    assert argv == [
        "run", "-s", "max_frame=2000", "--", "slm_lab/spec/benchmark/ppo_tiny.yaml",
        "ppo_cartpole_tiny", "train",
    ]  # fmt: skip
    # The hard-coded max_frame (equal to the Settings) was a warning, not an error.
    warning = (workdir / "results/logs/validate_spec/CartPole-v1/ppo_cartpole_tiny.log").read_text()
    assert "warning:" in warning and "hard-coded" in warning

    updated = (workdir / "results/BENCHMARKS.md").read_text()
    changed = [
        (a, b) for a, b in zip(original.splitlines(), updated.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1, changed
    old_row, new_row = changed[0]
    assert old_row.startswith("| PPO | ✅ | 498.94 |") and new_row.startswith("| PPO | ")
    metrics = json.loads(
        (workdir / "results/CartPole-v1/ppo_cartpole_tiny/metrics.json").read_text()
    )
    assert f"| {metrics['total_reward_ma']:.2f} |" in new_row
    assert (
        "[slm_lab/spec/benchmark/ppo_tiny.yaml](../slm_lab/spec/benchmark/ppo_tiny.yaml)" in new_row
    )

    # Nothing was written to the checkout by the default target.
    assert (root / "docs" / "BENCHMARKS.md").read_text() == original
    committed = snakemake(workdir, "results/checkout/commit.json")
    assert committed.returncode == 0, committed.stdout[-4000:]
    log = subprocess.run(
        ["git", "log", "-1", "--format=%s", "--name-only"], cwd=root, capture_output=True, text=True
    ).stdout.split("\n")
    assert log[0] == f"docs: update CartPole-v1 benchmark (PPO {metrics['total_reward_ma']:.2f})"
    # The spec is among the committed paths too, but it was already committed, unchanged.
    assert set(filter(None, log[1:])) == {
        "docs/BENCHMARKS.md",
        "docs/plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png",
    }
    record = json.loads((workdir / "results/checkout/commit.json").read_text())
    assert "slm_lab/spec/benchmark/ppo_tiny.yaml" in record["paths"]
    assert (root / "docs" / "BENCHMARKS.md").read_text() == updated
    remotes = subprocess.run(["git", "remote"], cwd=root, capture_output=True, text=True).stdout
    assert remotes == ""


def test_commit_message_follows_slm_lab():
    rows = [{"env_id": "CartPole-v1", "algorithm": "PPO", "ma": 498.944}]
    assert commit_message(rows) == "docs: update CartPole-v1 benchmark (PPO 498.94)"
    rows.append({"env_id": "Acrobot-v1", "algorithm": "A2C", "ma": -83.99})
    assert commit_message(rows) == (
        "docs: update CartPole-v1, Acrobot-v1 benchmarks (PPO 498.94, A2C -83.99)"
    )
