"""Finished runs are never thrown away: a failed upload keeps the run folder, and the next run
retries the upload only (no training again), with the local store and with the Hub."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hf_helpers import CANARY_TOKEN, offline_hf_env
from hub_server import HubServer
from workflow_helpers import (
    copy_tree,
    error_lines,
    make_workdir,
    planned_jobs,
    snakemake,
    tiny_config,
    trained_tree,
    tree_digest,
)

from slm_bench.formats.run_folder import read_run_folder

pytestmark = pytest.mark.slow

A2C = Path("results/CartPole-v1/a2c")
PPO = Path("results/CartPole-v1/ppo")
TABLE = Path("results/BENCHMARKS.md")
DEV = "SLM-Lab/benchmark-dev"


def finished_but_not_uploaded(workdir: Path, cell: Path) -> tuple[dict, Path, dict]:
    """The cell's run marker, its local run folder (a complete train run) and its digest."""
    marker = json.loads((workdir / cell / "run.json").read_text())
    local = workdir / marker["local_folder"]
    assert read_run_folder(local).kind == "train"
    assert not (workdir / cell / "upload.json").exists()
    return marker, local, tree_digest(local)


def assert_upload_only(result: subprocess.CompletedProcess, workdir: Path, cell: Path, marker):
    assert result.returncode == 0, result.stdout[-4000:]
    jobs = planned_jobs(result.stdout)
    assert "run_cell" not in jobs and jobs.get("upload_run") == 1, jobs
    assert json.loads((workdir / cell / "run.json").read_text()) == marker
    assert not (workdir / marker["local_folder"]).exists()  # removed once verified
    upload = json.loads((workdir / cell / "upload.json").read_text())
    assert upload["data_folder"] == marker["data_folder"]
    assert f"[{marker['data_folder']}](" in (workdir / TABLE).read_text()


def test_read_only_store_keeps_the_run_and_the_rerun_uploads_only(tmp_path_factory, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    store = workdir / "results/store/SLM-Lab/benchmark-dev/data"
    table, ppo = (workdir / TABLE).read_bytes(), tree_digest(workdir / PPO)
    mounted = subprocess.run(["mount", "--bind", str(store), str(store)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], check=True)

        failed = snakemake(workdir, "--forcerun", str(A2C / "run.json"))

        assert failed.returncode != 0
        errors = error_lines(failed.stdout)
        assert len(errors) == 1 and "Read-only file system" in errors[0], errors
        assert "Traceback" not in failed.stdout
        record = json.loads((workdir / A2C / "failure.json").read_text())
        assert record["rule"] == "upload_run"
        assert (workdir / TABLE).read_bytes() == table
        assert tree_digest(workdir / PPO) == ppo
        marker, local, run_files = finished_but_not_uploaded(workdir, A2C)
    finally:
        subprocess.run(["umount", str(store)], check=True)

    retried = snakemake(workdir)

    assert_upload_only(retried, workdir, A2C, marker)
    stored = tree_digest(store / marker["data_folder"])
    assert stored == {k: v for k, v in run_files.items() if not k.endswith("_optim.pt")}
    assert not (workdir / A2C / "failure.json").exists()
    assert tree_digest(workdir / PPO) == ppo


def test_failed_hub_upload_keeps_the_run_and_the_rerun_uploads_only(tmp_path, monkeypatch):
    offline_hf_env(monkeypatch, tmp_path / "hf_home")
    with HubServer(tmp_path / "hub") as hub:
        config = tiny_config(store="hf")
        cartpole = config["envs"]["CartPole-v1"]
        cartpole["algorithms"] = {"a2c": cartpole["algorithms"]["a2c"]}
        config["hf"] = {"endpoint": hub.url, "max_retries": 1, "backoff_s": 0.01, "max_wait_s": 1}
        workdir = make_workdir(tmp_path / "work", config)
        hub.inject(r"/commit/", status=500, times=None, message="commit refused")

        failed = snakemake(workdir)

        assert failed.returncode != 0
        errors = error_lines(failed.stdout)
        assert len(errors) == 1 and DEV in errors[0] and "500" in errors[0], errors
        assert CANARY_TOKEN not in failed.stdout and "Traceback" not in failed.stdout
        marker, local, run_files = finished_but_not_uploaded(workdir, A2C)

        hub.clear_faults()
        retried = snakemake(workdir)

        assert_upload_only(retried, workdir, A2C, marker)
        folder = marker["data_folder"]
        stored = {
            name.removeprefix(f"data/{folder}/")
            for name in hub.files(DEV)
            if name.startswith(f"data/{folder}/")
        }
        assert stored == {k for k in run_files if not k.endswith("_optim.pt")}
        assert CANARY_TOKEN not in retried.stdout
