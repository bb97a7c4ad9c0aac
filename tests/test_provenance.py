"""Provenance: slm-bench's version and commit, the runner's versions, Python, the machine and the
sessions' seeds, for a real SLM-Lab run folder, a real embedded run and a dstack record."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from tiny_results import tiny_benchmark

from slm_bench import __version__
from slm_bench.formats.session_scores import session_seeds
from slm_bench.steps import pulled_folder
from slm_bench.trust.provenance import (
    PROVENANCE_FILE,
    collect_provenance,
    read_provenance,
    write_provenance,
)

REPO = Path(__file__).resolve().parents[1]
SLM_LAB_RUN = REPO / "tests/fixtures/slm-lab-runs/ppo_cartpole_arc_2026_11_29_185430"


def _head() -> str | None:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else None


def test_common_fields_describe_this_software_and_machine():
    provenance = collect_provenance("embedded")
    assert provenance["slm_bench"]["version"] == __version__
    assert provenance["slm_bench"]["commit"] == _head()
    assert provenance["python"]["version"] == platform.python_version()
    machine = provenance["machine"]
    assert machine["where"] == "local"
    assert machine["cpu_cores"] >= 1 and machine["cpu_model"]
    json.dumps(provenance)  # JSON-ready


def test_embedded_runner_versions_are_the_training_packages():
    packages = collect_provenance("embedded")["runner"]["packages"]
    assert packages["stable-baselines3"] == metadata.version("stable-baselines3")
    assert packages["gymnasium"] == metadata.version("gymnasium")
    assert packages["torch"] == metadata.version("torch")


def test_slm_lab_run_gives_slm_labs_recorded_git_sha():
    provenance = collect_provenance("slm-lab", run_folder=SLM_LAB_RUN)
    runner = provenance["runner"]
    assert runner["slm_lab_git_sha"] == "96be3938d3239edb595f41190ae2ae035d83c65a"
    assert runner["slm_lab_git_sha_source"] == "run spec meta.git_sha"
    # SLM-Lab saves only the trial spec, whose random_seed is null: no seeds, and it says so
    assert provenance["seeds"] is None
    assert provenance["source"] == "not recorded in the run folder"


def test_slm_lab_checkout_head_when_the_run_does_not_record_it(tmp_path):
    checkout = tmp_path / "SLM-Lab"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text('[project]\nname = "slm-lab"\nversion = "5.3.0"\n')
    for argv in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv], cwd=checkout, check=True
        )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True
    ).stdout.strip()
    runner = collect_provenance("slm-lab", checkout=checkout)["runner"]
    assert runner == {
        "name": "slm-lab",
        "slm_lab_git_sha": head,
        "slm_lab_git_sha_source": "checkout HEAD",
        "slm_lab_version": "5.3.0",
    }


def test_dstack_machine_is_the_remote_one(tmp_path):
    extra = {"gpu": "L4", "instance": "g6.xlarge", "backend": "aws", "spot": True, "cost": 0.12}
    provenance = collect_provenance("dstack", extra=extra, remote_runner="slm-lab")
    machine = provenance["machine"]
    assert machine["where"] == "dstack"
    assert (machine["gpu"], machine["instance_type"]) == ("L4", "g6.xlarge")
    assert machine["cpu_model"] is None  # not this machine's CPU
    # the remote wrote its own provenance into the folder: its CPU is used, dstack's GPU kept
    folder = shutil.copytree(SLM_LAB_RUN, tmp_path / SLM_LAB_RUN.name)
    remote = {"machine": {"cpu_model": "AMD EPYC 7R13", "cpu_cores": 4, "gpu": "NVIDIA L4"}}
    write_provenance(folder, remote)
    machine = collect_provenance("dstack", folder, extra=extra, remote_runner="slm-lab")["machine"]
    assert (machine["cpu_model"], machine["cpu_cores"], machine["gpu"]) == (
        "AMD EPYC 7R13",
        4,
        "NVIDIA L4",
    )
    assert machine["instance_type"] == "g6.xlarge"
    assert provenance["runner"]["slm_lab_git_sha"] is None


def test_session_specs_seeds_come_first(tmp_path):
    folder = shutil.copytree(SLM_LAB_RUN, tmp_path / SLM_LAB_RUN.name)
    spec = json.loads((folder / "ppo_cartpole_arc_t0_spec.json").read_text())
    for s in range(4):
        spec["meta"].update(session=s, random_seed=1000 * s + 17)
        (folder / f"ppo_cartpole_arc_t0_s{s}_spec.json").write_text(json.dumps(spec))
    assert session_seeds(folder) == {
        "seeds": [17, 1017, 2017, 3017],
        "source": "session specs meta.random_seed",
    }


def test_cli_writes_provenance_beside_slm_labs_files(tmp_path):
    folder = shutil.copytree(SLM_LAB_RUN, tmp_path / SLM_LAB_RUN.name)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    out = folder / PROVENANCE_FILE
    subprocess.run(
        [sys.executable, "-m", "slm_bench.trust.provenance", "--runner", "slm-lab",
         "--run-folder", str(folder), "--output", str(out)],
        check=True,
    )  # fmt: skip
    after = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert after == sorted([*before, Path(PROVENANCE_FILE)])
    written = json.loads(out.read_text())
    assert written["runner"]["slm_lab_git_sha"].startswith("96be3938")
    assert read_provenance({}, folder) == written
    assert read_provenance({"provenance": {"x": 1}}, folder) == {"x": 1}


@pytest.mark.slow
def test_real_embedded_run_seeds_match_its_log(tmp_path_factory):
    workdir = tiny_benchmark(tmp_path_factory)
    cell = workdir / "results/CartPole-v1/ppo"
    folder = pulled_folder(cell / "hf_data")
    provenance = collect_provenance("embedded", run_folder=folder)
    logged = re.search(r"seeds \[([0-9, ]+)\]", (cell / "train.log").read_text())
    assert logged, "the embedded runner logs its seeds"
    assert provenance["seeds"] == [int(s) for s in logged.group(1).split(",")]
    assert len(provenance["seeds"]) == 4 and provenance["source"] == "trial log"
