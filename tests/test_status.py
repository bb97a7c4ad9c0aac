"""The status table: cell states from journals, markers and one live `dstack ps` call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standins import StandinDstack, use_standin

from slm_bench.errors import BenchError
from slm_bench.monitor.status import cell_status, live_statuses, render_status_table
from slm_bench.runners import RunRequest
from slm_bench.runners.dstack import DstackRunner, RunState

RECORDED = Path(__file__).resolve().parent / "standins" / "recorded"
SECRET = "hf_statussecret0123456789abcdefghijkl"


def cell_paths(root: Path, name: str = "CartPole-v1/ppo") -> dict:
    cell = root / name
    cell.mkdir(parents=True, exist_ok=True)
    return {
        "cell": name,
        "journal_path": cell / "journal.json",
        "marker_path": cell / "run.json",
        "metrics_path": cell / "metrics.json",
    }


def write_journal(path: Path, attempts: list[dict]) -> None:
    path.write_text(json.dumps({"fingerprint": "fp", "attempts": attempts}))


def recorded_state(name: str) -> dict:
    run = json.loads((RECORDED / f"ps_{name}.json").read_text())["runs"][0]
    return RunState.from_json(run).to_dict()


def test_planned_and_submitted(tmp_path):
    paths = cell_paths(tmp_path)
    assert cell_status(**paths, live=None)["state"] == "planned"
    write_journal(paths["journal_path"], [{"name": "ppo-cartpole", "state": "submitting"}])
    row = cell_status(**paths, live={})
    assert (row["state"], row["runs"], row["cost"]) == ("submitted", ["ppo-cartpole"], 0.0)


def test_live_status_wins_over_the_journal_for_the_same_run(tmp_path):
    paths = cell_paths(tmp_path)
    pending = {**recorded_state("pending"), "name": "ppo-cartpole", "id": "run-1"}
    write_journal(
        paths["journal_path"], [{"name": "ppo-cartpole", "state": "pending", "run": pending}]
    )
    assert cell_status(**paths)["state"] == "submitted"
    live = {"ppo-cartpole": {**pending, "status": "running", "cost": 0.42}}
    row = cell_status(**paths, live=live)
    assert (row["state"], row["dstack"], row["cost"]) == ("running", "running", 0.42)
    # A run of the same name that is not ours (another id) is ignored.
    other = {"ppo-cartpole": {**pending, "id": "run-2", "status": "done", "cost": 9.0}}
    assert cell_status(**paths, live=other)["dstack"] == "pending"


def test_failed_cells_show_why(tmp_path):
    paths = cell_paths(tmp_path)
    failed = {**recorded_state("failed"), "name": "ppo-cartpole"}
    write_journal(
        paths["journal_path"], [{"name": "ppo-cartpole", "state": "failed", "run": failed}]
    )
    row = cell_status(**paths)
    assert row["state"] == "failed" and "no fleets" in row["reason"]

    submit_error = {"name": "ppo-cartpole", "status": "failed", "submit_error": "No remote branch"}
    write_journal(
        paths["journal_path"], [{"name": "ppo-cartpole", "state": "failed", "run": submit_error}]
    )
    assert cell_status(**paths)["reason"] == "No remote branch"

    write_journal(paths["journal_path"], [{"name": "ppo-cartpole", "state": "cancelled"}])
    assert (cell_status(**paths)["state"], cell_status(**paths)["reason"]) == (
        "failed",
        "cancelled",
    )


def test_done_cell_has_score_status_and_total_cost(tmp_path):
    paths = cell_paths(tmp_path)
    attempts = [
        {"name": "ppo-cartpole", "state": "failed", "run": {"status": "failed", "cost": 0.25}},
        {"name": "ppo-cartpole-2", "state": "done", "run": {"status": "done", "cost": 1.5}},
    ]
    write_journal(paths["journal_path"], attempts)
    paths["marker_path"].write_text(json.dumps({"run_name": "ppo-cartpole-2", "data_folder": "F"}))
    paths["metrics_path"].write_text(json.dumps({"total_reward_ma": 498.94}))
    (paths["metrics_path"].parent / "row.json").write_text(json.dumps({"status": "✅"}))
    row = cell_status(**paths)
    assert row["state"] == "done" and row["score"] == 498.94 and row["status"] == "Solved"
    assert row["runs"] == ["ppo-cartpole", "ppo-cartpole-2"] and row["cost"] == 1.75

    local = cell_paths(tmp_path, "Acrobot-v1/ppo")  # a local run: no journal, a marker
    local["marker_path"].write_text(json.dumps({"run_name": "ppo_acrobot", "data_folder": "G"}))
    assert cell_status(**local)["state"] == "done"


def test_render_status_table(tmp_path):
    rows = [
        {"cell": "CartPole-v1/ppo", "state": "done", "dstack": "done", "runs": ["ppo-cartpole"],
         "cost": 1.5, "score": 498.94, "status": "Solved", "reason": None},
        {"cell": "Acrobot-v1/a2c", "state": "failed", "dstack": "failed", "runs": ["a2c-acrobot"],
         "cost": 0.02, "score": None, "status": None, "reason": "job_failed, no fleets"},
        {"cell": "Pendulum-v1/ppo", "state": "planned", "dstack": None, "runs": [], "cost": None,
         "score": None, "status": None, "reason": None},
    ]  # fmt: skip
    text = render_status_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["CELL", "STATE", "DSTACK", "RUNS", "COST", "MA", "STATUS", "REASON"]
    done = ["CartPole-v1/ppo", "done", "done", "ppo-cartpole", "$1.50", "498.94", "Solved"]
    assert lines[1].split()[:7] == done
    assert lines[2].endswith("job_failed, no fleets")
    assert lines[3].split() == ["Pendulum-v1/ppo", "planned", "-", "-", "-", "-", "-", "-"]
    assert lines[-1] == "3 cells: 1 planned, 1 done, 1 failed; cost $1.52"
    # Columns line up: every row's STATE starts where the header's does.
    column = lines[0].index("STATE")
    assert all(line[column - 2 : column] == "  " for line in lines[1:4])


@pytest.fixture
def standin(tmp_path, monkeypatch) -> StandinDstack:
    return use_standin(tmp_path, monkeypatch, SECRET)


def test_live_statuses_with_one_ps_call_and_no_env_values(tmp_path, standin):
    standin.scenario({"default": [{"status": "provisioning"}, {"status": "running", "cost": 0.3}]})
    request = RunRequest(
        spec_file="specs/ppo_classic.yaml",
        spec_name="ppo_cartpole",
        sets={},
        workdir=tmp_path / "cell" / "work",
        log_path=tmp_path / "cell" / "train.log.partial",
        journal_path=tmp_path / "cell" / "journal.json",
        time_limit_s=3600,
        cell="CartPole-v1/ppo",
        fingerprint="fp",
    )
    store = {"name": "hf", "dev_repo": "SLM-Lab/benchmark-dev"}
    runner = DstackRunner(
        {"dstack_bin": standin.dstack_bin, "poll_interval_s": 0.01, "store": store}
    )
    runner.submit(request)
    before = len(standin.calls("ps"))

    live = live_statuses(standin.dstack_bin)
    assert len(standin.calls("ps")) == before + 1
    assert live["ppo-cartpole"]["status"] == "running" and live["ppo-cartpole"]["gpu"] == "A10G"
    assert SECRET not in json.dumps(live)  # the server's ps output holds it; the summary does not

    row = cell_status(
        "CartPole-v1/ppo", request.journal_path, tmp_path / "none", tmp_path / "none", live
    )
    assert (row["state"], row["cost"]) == ("running", 0.3)
    assert "ppo-cartpole" in render_status_table([row])


def test_live_statuses_failure_is_a_bench_error(tmp_path, standin):
    standin.scenario({"ps_failures": 1})
    with pytest.raises(BenchError, match="cannot list runs"):
        live_statuses(standin.dstack_bin)


# -- the status and cancel targets, through the real Snakemake ----------------------------------


def _apply(stand: StandinDstack, tmp_path: Path, name: str) -> None:
    import subprocess

    task = tmp_path / "task.yml"
    task.write_text("type: task\ncommands: [sleep 1]\n")
    subprocess.run(
        [stand.dstack_bin, "apply", "-f", str(task), "-y", "-d", "-n", name],
        check=True,
        capture_output=True,
        env=stand.env(),
    )


@pytest.mark.slow
def test_status_and_cancel_run_every_time_they_are_asked(tmp_path):
    import subprocess

    from workflow_helpers import make_workdir, snakemake, snakemake_argv, tiny_config

    workdir = make_workdir(tmp_path / "work", tiny_config())
    stand = StandinDstack(tmp_path / "dstack", {"default": [{"status": "running"}]})
    for _ in range(2):
        shown = snakemake(workdir, "status")
        assert shown.returncode == 0, shown.stdout[-3000:]
        assert "3 cells: 3 planned; cost $0.00" in shown.stdout
    # A failed stage shows in status with its error line; a corrupt marker only in its cell.
    for algo in ("ppo", "dqn", "a2c"):
        (workdir / "results/CartPole-v1" / algo).mkdir(parents=True, exist_ok=True)
    (workdir / "results/CartPole-v1/ppo/failure.json").write_text(
        json.dumps({"rule": "extract_metrics", "error": "train.log: no trial_metrics line"})
    )
    (workdir / "results/CartPole-v1/dqn/run.json").write_text("{truncated")
    shown = snakemake(workdir, "status")
    assert shown.returncode == 0, shown.stdout[-3000:]
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if "CartPole" in line}
    assert lines["CartPole-v1/ppo"].endswith("extract_metrics: train.log: no trial_metrics line")
    assert "results/CartPole-v1/dqn/run.json: unreadable JSON" in lines["CartPole-v1/dqn"]
    assert lines["CartPole-v1/a2c"].split()[1] == "planned"

    # cancel twice: the second stops the run submitted after the first.
    journal = workdir / "results/CartPole-v1/a2c/journal.json"
    for name in ("a2c-cartpole", "a2c-cartpole-2"):
        _apply(stand, tmp_path, name)
        attempts = json.loads(journal.read_text())["attempts"] if journal.exists() else []
        attempts.append({"name": name, "state": "running"})
        journal.write_text(json.dumps({"dstack_bin": stand.dstack_bin, "attempts": attempts}))
        cancelled = subprocess.run(
            snakemake_argv(workdir, "cancel"),
            cwd=workdir,
            env=stand.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        assert cancelled.returncode == 0, cancelled.stdout[-3000:]
        assert f"stopped 1 run(s): {name}" in cancelled.stdout
        assert stand.run(name)["status"] == "terminated"


def test_cost_of_the_classic_phase_as_planned_against_slm_labs_choice(monkeypatch):
    import yaml

    from slm_bench.matrix.config import build_matrix, load_config, read_config
    from slm_bench.monitor.status import cost_report

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)  # configs/classic.yaml names the project's specs/
    config = yaml.safe_load((repo / "configs" / "classic.yaml").read_text())
    config.update(runner="dstack", store="hf")
    matrix = build_matrix(load_config(dict(config)))
    planned = cost_report(matrix, read_config(dict(config)))
    assert planned.splitlines()[1] == (
        "  Phase 1: Classic Control: 9 cells: as planned 9 cpu, at most $1.35/h; SLM-Lab's own"
        " choice 9 cpu, at most $1.35/h (typically ~$1.17/h)"
    )
    # The old profile default (a 20 GB GPU at up to $0.50/h for every cell), for comparison.
    gpu = {"hardware": "gpu", "resources": {"gpu": {"memory": "20GB..", "count": 1}}}
    config["dstack"] = {**gpu, "max_price": 0.5}
    line = cost_report(matrix, read_config(dict(config))).splitlines()[1]
    assert "as planned 9 gpu, at most $4.50/h; SLM-Lab's own choice 9 cpu" in line


def test_a_waiting_run_shows_the_journals_latest_reason(tmp_path):
    paths = cell_paths(tmp_path)
    pending = {**recorded_state("pending"), "name": "ppo-cartpole"}
    write_journal(
        paths["journal_path"], [{"name": "ppo-cartpole", "state": "pending", "run": pending}]
    )
    row = cell_status(**paths)
    assert (row["state"], row["dstack"]) == ("submitted", "pending")
    assert row["reason"] == (
        "no fleets: No matching fleet found. Possible reasons:"
        " https://dstack.ai/docs/guides/troubleshooting/#no-fleets"
    )
    problem = {"name": "ppo-cartpole", "status": "failed", "problem": "no fleets: The project"}
    write_journal(
        paths["journal_path"], [{"name": "ppo-cartpole", "state": "failed", "run": problem}]
    )
    assert cell_status(**paths)["reason"] == "no fleets: The project"
