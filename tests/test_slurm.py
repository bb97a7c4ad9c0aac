"""The Slurm route (profiles/slurm) against a real one-node Slurm with accounting.

Every fault is produced for real: Slurm's own time limit, ``scontrol requeue`` and ``scancel``
while the job trains, an sbatch request no node can satisfy, a controller that does not answer.
Skipped with the reason when the Slurm packages or root are missing (CI installs them).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from slurm_cluster import NODE_MEMORY_MB, SlurmCluster, free_port, skip_reason
from workflow_helpers import REPO, SNAKEFILE, error_lines, make_workdir, planned_jobs, tiny_config

from slm_bench.matrix.config import read_config
from slm_bench.slurm import resources

# One test Slurm cluster per machine (fixed sockets under /run): its tests share one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]
PROFILE = REPO / "profiles" / "slurm"


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    yield cluster
    cluster.stop()
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


@pytest.fixture(autouse=True)
def no_process_of_an_ended_job(slurm):
    """After each test, the processes of jobs Slurm has ended are gone (SlurmCluster.
    reap_finished_jobs: what a cgroup-tracked cluster does), so none trains on into the next."""
    yield
    slurm.reap_finished_jobs()


def slurm_workdir(path: Path, algos=("ppo", "a2c"), max_frame=2000, **top) -> Path:
    """A tiny CartPole benchmark whose cells fit the test node (2 sessions: 2 CPUs a job)."""
    config = tiny_config(**top)
    cartpole = config["envs"]["CartPole-v1"]
    cartpole["settings"].update(max_session=2, max_frame=max_frame)
    cartpole["algorithms"] = {algo: cartpole["algorithms"][algo] for algo in algos}
    workdir = make_workdir(path, config)
    for spec in (workdir / "specs").glob("*.yaml"):
        spec.write_text(re.sub(r"(?m)^  max_session: 4$", "  max_session: 2", spec.read_text()))
    return workdir


def profile_argv(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--workflow-profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "2",
        *args,
    ]  # fmt: skip


def doc_commands() -> list[str]:
    """The ``snakemake`` command lines of docs/slurm.md's code blocks."""
    text = (REPO / "docs" / "slurm.md").read_text()
    return [line for line in text.splitlines() if line.startswith("snakemake ")]


def run_doc_command(workdir: Path, target: str) -> subprocess.CompletedProcess:
    """docs/slurm.md's command for ``target``, as written, from a project folder (its profiles
    copied beside the config), FILE being that config."""
    (command,) = [c for c in doc_commands() if c.endswith(f" {target}")]
    shutil.copytree(REPO / "profiles", workdir / "profiles", dirs_exist_ok=True)
    argv = shlex.split(command.replace("FILE", str(workdir / "config.yaml")))
    argv[:1] = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
    argv.insert(-1, "--slurm-init-seconds-before-status-checks=2")  # the tests' only change
    return subprocess.run(
        argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900
    )


def run_profile(workdir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        profile_argv(workdir, *args), cwd=workdir, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )  # fmt: skip


def start_profile(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        profile_argv(workdir, *args), cwd=workdir, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def job_record(workdir: Path, algo: str, attempt: int = 1, timeout_s: float = 300) -> dict:
    """The cell's slurm.json once its job (this attempt) has started on the node."""
    path = workdir / "results" / "CartPole-v1" / algo / "slurm.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            record = json.loads(path.read_text())
            if record["attempt"] >= attempt:
                return record
        time.sleep(0.5)
    raise AssertionError(f"{path}: attempt {attempt} never started")


def sacct_state(cluster: SlurmCluster, job_id: str) -> str:
    return cluster.run("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State").strip()


def test_two_cells_build_through_sbatch(slurm, tmp_path, monkeypatch):
    workdir = slurm_workdir(tmp_path / "w")
    assert len(doc_commands()) == 3  # build, status, cancel: each runs below
    result = run_doc_command(workdir, "results/BENCHMARKS.md")
    assert result.returncode == 0, result.stdout[-4000:]
    table = (workdir / "results" / "BENCHMARKS.md").read_text()
    assert "| PPO |" in table and "| A2C |" in table
    for algo in ("ppo", "a2c"):
        record = job_record(workdir, algo)
        assert slurm.wait_for_state(record["job_id"], {"COMPLETED"}, 60) == "COMPLETED"
        assert f"has been submitted with SLURM jobid {record['job_id']}" in result.stdout
        marker = json.loads((workdir / f"results/CartPole-v1/{algo}/run.json").read_text())
        machine = marker["provenance"]["machine"]
        assert machine["where"] == "slurm"
        assert machine["slurm"] == {"job_id": record["job_id"], "node": slurm.host, "attempt": 1}
    # Light rules ran here, only training went to Slurm: two jobs in the accounting.
    jobs = slurm.run("sacct", "-X", "-n", "-P", "-o", "JobIDRaw,State", "-S", "now-1hour")
    assert len(re.findall(r"\|COMPLETED", jobs)) >= 2
    status = run_doc_command(workdir, "status")
    assert status.returncode == 0, status.stdout[-3000:]
    ppo = json.loads((workdir / "results/CartPole-v1/ppo/slurm.json").read_text())["job_id"]
    row = rf"CartPole-v1/ppo\s+run_cell\s+{ppo}\s+1\s+COMPLETED\s+{slurm.host}\s+\d\d:"
    assert re.search(row, status.stdout), status.stdout[-3000:]
    cancel = run_doc_command(workdir, "cancel")
    assert cancel.returncode == 0 and "cancelled 0 Slurm job(s)" in cancel.stdout
    # The measured peak sets the next request: max_rss x 1.5, rounded up to 256 MB.
    tsv = (workdir / "results/benchmarks/run_cell/CartPole-v1/ppo.tsv").read_text().splitlines()
    peak = float(tsv[1].split("\t")[2])
    monkeypatch.chdir(workdir)
    resources.measured_files.cache_clear()
    options = replace(read_config(tiny_config()).slurm, mem_mb=4096, mem_margin=1.5)
    assert (
        resources.memory_mb("run_cell", "CartPole-v1", "ppo", options)
        == -(-peak * 1.5 // 256) * 256
    )
    assert resources.memory_mb("run_cell", "CartPole-v1", "dqn", options) == 4096


def test_requeue_relaunches_and_scancel_fails_only_its_cell(slurm, tmp_path):
    # Long enough that both jobs are still training when they are requeued and cancelled.
    workdir = slurm_workdir(tmp_path / "w", max_frame=20000)
    run = start_profile(workdir, "results/BENCHMARKS.md")
    try:
        requeued = job_record(workdir, "a2c")
        cancelled = job_record(workdir, "ppo")
        slurm.run("scontrol", "requeue", requeued["job_id"])
        slurm.run("scancel", cancelled["job_id"])
        output, _ = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0, output[-4000:]
    # The requeued job trained again under the same id (attempt 2) and its cell completed.
    record = json.loads((workdir / "results/CartPole-v1/a2c/slurm.json").read_text())
    assert [a["attempt"] for a in record["attempts"]] == [1, 2]
    assert {a["job_id"] for a in record["attempts"]} == {requeued["job_id"]}
    assert (workdir / "results/CartPole-v1/a2c/row.json").exists()
    assert sacct_state(slurm, requeued["job_id"]) == "COMPLETED"
    first = record["attempts"][0]["requeued"]
    assert first.startswith(f"Slurm requeued job {requeued['job_id']} after "), first
    assert first.endswith("attempt 2 trains the cell again from the start")
    # The cancelled cell failed with its line, recorded for status and the next plan.
    line = f"error: Slurm job {cancelled['job_id']} was cancelled after"
    assert any(err.startswith(line) for err in error_lines(output)), output[-4000:]
    failure = json.loads((workdir / "results/CartPole-v1/ppo/failure.json").read_text())
    assert failure["rule"] == "run_cell" and "was cancelled" in failure["error"]
    # A rerun retrains just that cell, then builds the table with both rows.
    plan = run_profile(workdir, "-n", "results/BENCHMARKS.md")
    assert planned_jobs(plan.stdout).get("run_cell") == 1, plan.stdout[-3000:]
    assert "results/CartPole-v1/ppo/run.json" in plan.stdout
    rerun = run_profile(workdir, "results/BENCHMARKS.md")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    table = (workdir / "results/BENCHMARKS.md").read_text()
    assert "| PPO |" in table and "| A2C |" in table
    assert json.loads((workdir / "results/CartPole-v1/a2c/slurm.json").read_text()) == record


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_snakemake_cancels_the_slurm_jobs(slurm, tmp_path, signum):
    """Ctrl-C, or SIGINT or SIGTERM to the Snakemake process alone (kill PID, timeout, a batch
    system): the cell's Slurm job is cancelled and the cell says so."""
    workdir = slurm_workdir(tmp_path / "w", algos=("ppo",), max_frame=400000)
    run = start_profile(workdir, "results/BENCHMARKS.md")
    try:
        job_id = job_record(workdir, "ppo")["job_id"]
        run.send_signal(signum)
        output, _ = run.communicate(timeout=300)  # 120 s was too short at load 14
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert slurm.wait_for_state(job_id, {"CANCELLED"}, 60) == "CANCELLED", output[-3000:]
    failure = json.loads((workdir / "results/CartPole-v1/ppo/failure.json").read_text())
    assert failure["error"].startswith(f"Slurm job {job_id} was cancelled after")
    assert not (workdir / "results/CartPole-v1/ppo/run.json").exists()


def test_time_limit_kill_fails_its_cell_with_the_line(slurm, tmp_path):
    # Far more frames than a minute trains, even on a quiet machine (400,000 a session finished
    # in 63 s there, before Slurm enforced the limit).
    workdir = slurm_workdir(tmp_path / "w", algos=("ppo",), max_frame=4000000, time_limit="1m")
    started = time.monotonic()
    result = run_profile(workdir, "results/BENCHMARKS.md", timeout=600)
    assert result.returncode != 0
    job_id = json.loads((workdir / "results/CartPole-v1/ppo/slurm.json").read_text())["job_id"]
    line = f"error: Slurm stopped job {job_id} at its time limit (TimeLimit=00:01:00, ran 00:0"
    assert any(err.startswith(line) for err in error_lines(result.stdout)), result.stdout[-4000:]
    assert sacct_state(slurm, job_id) == "TIMEOUT"
    failure = json.loads((workdir / "results/CartPole-v1/ppo/failure.json").read_text())
    assert failure["error"].startswith(line.removeprefix("error: "))
    assert not (workdir / "results/CartPole-v1/ppo/run.json").exists()
    assert time.monotonic() - started < 400


def test_unsatisfiable_request_fails_at_submission(slurm, tmp_path):
    big = NODE_MEMORY_MB * 4
    workdir = slurm_workdir(tmp_path / "w", algos=("ppo",), slurm={"mem_mb": big})
    started = time.monotonic()
    result = run_profile(workdir, "results/BENCHMARKS.md", timeout=120)
    assert result.returncode != 0
    assert time.monotonic() - started < 60
    assert "SLURM sbatch failed" in result.stdout
    assert "Memory specification can not be satisfied" in result.stdout, result.stdout[-3000:]
    assert f"--mem {-(-big // 256) * 256}" in result.stdout


def test_controller_unreachable_is_one_line(slurm, tmp_path):
    workdir = slurm_workdir(tmp_path / "w", algos=("ppo",), slurm={"controller_timeout_s": 10})
    conf = tmp_path / "etc" / "slurm.conf"
    conf.parent.mkdir()
    text = slurm.conf.read_text()
    conf.write_text(re.sub(r"SlurmctldPort=\d+", f"SlurmctldPort={free_port()}", text))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started = time.monotonic()
    result = subprocess.run(
        profile_argv(workdir, "results/BENCHMARKS.md"), cwd=workdir, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert time.monotonic() - started < 90
    lines = [line for line in result.stdout.splitlines() if "Slurm controller unreachable" in line]
    assert lines and lines[0].strip().endswith("nothing was submitted"), result.stdout[-3000:]
    assert "has been submitted" not in result.stdout


def test_stop_leaves_no_process_of_the_jobs_and_the_cluster_starts_again(slurm, tmp_path):
    """The cluster's teardown: a job whose training went into a session of its own (as a
    killed Snakemake job step leaves it) is gone with every process of the job, slurmstepd
    included; then the cluster starts again on its own state for the tests after this one."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nsetsid sleep 900 &\nexec sleep 901\n")
    job_id = slurm.run("sbatch", "--parsable", "-o", str(tmp_path / "job.out"), str(script))
    job_id = job_id.strip().split(";")[0]
    slurm.wait_for_state(job_id, {"RUNNING"}, 60)
    deadline = time.monotonic() + 30
    while len(started := slurm.job_processes()) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)  # slurmstepd, then the script's two sleeps
    commands = list(started.values())
    assert any(c.startswith("slurmstepd") for c in commands), started
    assert "sleep 900" in commands and "sleep 901" in commands, started
    assert slurm.reap_finished_jobs() == []  # a running job's processes are left alone
    assert all(Path(f"/proc/{pid}").exists() for pid in started), started
    slurm.stop()
    assert slurm.job_processes() == {}
    assert not [pid for pid in started if Path(f"/proc/{pid}").exists()], started
    slurm.start()
    assert slurm.run("sinfo", "-h", "-N", "-o", "%T").strip().startswith("idle")
