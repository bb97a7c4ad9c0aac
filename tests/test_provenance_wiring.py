"""Provenance reaches run.json, metrics.json and the store's run folder on a real tiny build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from seeded_runs import CELL, SEED, pulled_folder, seeded_builds

from slm_bench import __version__
from slm_bench.matrix.seeds import cell_seed
from slm_bench.runners.dstack import task as dstack_task

FIXTURE_RUN = (
    Path(__file__).parent / "fixtures" / "slm-lab-runs" / "ppo_cartpole_arc_2026_11_29_185430"
)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_provenance_in_run_json_metrics_json_and_the_store_folder(tmp_path_factory):
    workdir = seeded_builds(tmp_path_factory)[0]
    cell_dir = workdir / "results" / CELL
    run = read(cell_dir / "run.json")
    provenance = run["provenance"]
    assert provenance["slm_bench"]["version"] == __version__
    assert provenance["runner"]["name"] == "embedded"
    packages = provenance["runner"]["packages"]
    assert packages["stable-baselines3"] and packages["gymnasium"] and packages["torch"]
    assert provenance["python"]["version"].count(".") == 2
    assert provenance["machine"]["cpu_cores"] >= 1
    seed = cell_seed(SEED, CELL)
    assert provenance["seeds"] == [seed, seed + 1000]  # both sessions, from the fixed seed
    assert read(cell_dir / "metrics.json")["provenance"] == provenance
    # The store's folder (and the copy pulled back from it) has provenance.json at its top,
    # beside SLM-Lab's files, and the pulled folder passed the run-folder and score checks.
    url = read(cell_dir / "upload.json")["url"]
    store_folder = Path(url) if Path(url).is_absolute() else workdir / url
    assert read(store_folder / "provenance.json") == provenance
    pulled = pulled_folder(workdir)
    assert read(pulled / "provenance.json") == provenance
    assert any(pulled.glob("*_spec.json"))
    assert (cell_dir / "row.json").is_file()


def test_the_embedded_remote_task_writes_provenance_before_its_upload(tmp_path):
    """The task's upload command run by bash for real, `hf` recording its arguments: the
    folder it uploads already holds provenance.json describing the machine and the seeds."""
    folder = tmp_path / "data" / FIXTURE_RUN.name
    shutil.copytree(FIXTURE_RUN, folder)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hf").write_text('#!/bin/sh\nls "$3" > "$HF_LISTING"\n')
    (bin_dir / "hf").chmod(0o755)
    # The box's Python has slm-bench installed: a wrapper, since a symlink to a venv's python
    # outside its venv's bin/ runs the base interpreter without the venv's packages.
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {
        **os.environ,
        "HF_REPO": "me/dev",
        "HF_LISTING": str(tmp_path / "listing"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    subprocess.run(["bash", "-c", dstack_task.EMBEDDED_UPLOAD], cwd=tmp_path, env=env, check=True)
    assert "provenance.json" in (tmp_path / "listing").read_text().split()
    written = read(folder / "provenance.json")
    assert written["runner"]["name"] == "embedded"
    assert written["machine"]["cpu_cores"] >= 1
    assert written["slm_bench"]["version"] == __version__
