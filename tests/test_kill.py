"""SIGKILL in the middle of a write, then a rerun: nothing partial, nothing lost.

The kill lands at a chosen point of the real code: ``tests/kill_hooks/sitecustomize.py`` holds
the job there (the staged table fully written to its temp file but not renamed; a store upload
with two files copied) and the test kills Snakemake's whole process group. The runs are
otherwise the ones users get.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from process_helpers import Build
from workflow_helpers import (
    copy_tree,
    planned_jobs,
    snakemake,
    trained_tree,
    tree_digest,
)

from slm_bench.formats.run_folder import read_run_folder

pytestmark = pytest.mark.slow

A2C = Path("results/CartPole-v1/a2c")
PPO = Path("results/CartPole-v1/ppo")
TABLE = Path("results/BENCHMARKS.md")
STORE = Path("results/store/SLM-Lab/benchmark-dev/data")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return trained_tree(tmp_path_factory)


def kill_at(workdir: Path, point: str, *args: str, timeout: float = 300) -> None:
    """Run Snakemake (a Build: it dies with this test, even if pytest is SIGKILLed) until a job
    reaches ``point``, then SIGKILL its whole process group."""
    build = Build(workdir, *args, pause=point, name="killed")
    build.wait_until(build.paused.exists, point, timeout=timeout)
    build.kill_group()


def rerun(workdir: Path) -> subprocess.CompletedProcess:
    assert snakemake(workdir, "--unlock").returncode == 0
    result = snakemake(workdir, "--rerun-incomplete")
    assert result.returncode == 0, result.stdout[-4000:]
    return result


def test_sigkill_mid_table_write_keeps_the_table(trained, tmp_path):
    workdir = copy_tree(trained, tmp_path / "work")
    table = (workdir / TABLE).read_bytes()
    cells = {cell: tree_digest(workdir / cell) for cell in (PPO, A2C)}
    # A redrawn plot (other bytes, same name): the table is rebuilt, to the same text.
    plot = next((workdir / "results/plots").glob("*.png"))
    plot.write_bytes(plot.read_bytes() + b"\0")

    kill_at(workdir, "fsync:BENCHMARKS.staged.md")

    # The kill hit the staged table's write: the table itself is untouched.
    assert (workdir / TABLE).read_bytes() == table
    leftovers = list((workdir / "results").glob(".BENCHMARKS.staged.md.*.tmp"))
    assert leftovers, "the kill did not land inside the write"
    assert not (workdir / "results/BENCHMARKS.staged.md").exists()
    # Not hidden: the next run plans the table again although no staged file is left.
    assert snakemake(workdir, "--unlock").returncode == 0
    plan = snakemake(workdir, "-n", "--rerun-incomplete")
    assert planned_jobs(plan.stdout) == {"write_benchmarks": 1, "install_table": 1, "all": 1}

    result = rerun(workdir)

    assert planned_jobs(result.stdout) == {"write_benchmarks": 1, "install_table": 1, "all": 1}
    assert (workdir / TABLE).read_bytes() == table  # same rows: the same table, rebuilt
    assert not list((workdir / "results").glob(".BENCHMARKS.staged.md.*.tmp"))
    assert {cell: tree_digest(workdir / cell) for cell in (PPO, A2C)} == cells
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout


def test_sigkill_mid_upload_keeps_the_run_and_retries_only_the_upload(trained, tmp_path):
    workdir = copy_tree(trained, tmp_path / "work")
    table = (workdir / TABLE).read_bytes()
    ppo = tree_digest(workdir / PPO)

    # A new a2c run (forced), killed while its folder is being copied into the store.
    kill_at(workdir, "copy:2", "--forcerun", str(A2C / "run.json"))

    marker = json.loads((workdir / A2C / "run.json").read_text())
    folder = marker["data_folder"]
    local = workdir / marker["local_folder"]
    assert read_run_folder(local).kind == "train"  # the finished run is intact
    run_files = tree_digest(local)
    assert not (workdir / STORE / folder).exists()  # nothing that looks complete in the store
    assert any(p.name.startswith(f".{folder}.") for p in (workdir / STORE).iterdir())
    assert not (workdir / A2C / "upload.json").exists()
    assert (workdir / TABLE).read_bytes() == table
    marker_bytes = (workdir / A2C / "run.json").read_bytes()

    result = rerun(workdir)

    jobs = planned_jobs(result.stdout)
    assert "run_cell" not in jobs and jobs["upload_run"] == 1, jobs  # no training again
    assert (workdir / A2C / "run.json").read_bytes() == marker_bytes
    assert tree_digest(workdir / STORE / folder) == {
        name: digest for name, digest in run_files.items() if not name.endswith("_optim.pt")
    }
    assert not local.exists()  # removed only once the store's copy was verified
    # The killed upload's half copy is gone too (its writer is dead): only the folder is left.
    assert [p.name for p in (workdir / STORE).iterdir() if folder in p.name] == [folder]
    text = (workdir / TABLE).read_text()
    assert f"[{folder}](" in text and text.count("| A2C |") == 1
    assert tree_digest(workdir / PPO) == ppo
