"""A signal to Snakemake alone (`kill PID`, `timeout`, systemd, a batch system) stops the build as
Ctrl-C does: each running cell prints its line and the build exits promptly, nothing left running.

Real Snakemake, real signals to the Snakemake pid only (its jobs are not signalled by the test):
the embedded runner training locally, and the dstack runner waiting on a run of the real local
dstack server (tests/dstack_server.py). That server has no fleet: the runner fails a run with
"no fleets" at its first poll after the server says so, so the signal goes in as soon as the run
is submitted, and to one cell (a second cell's `dstack apply` can take longer than the first's
diagnosis on a loaded machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dstack_server import DstackServer, served
from process_helpers import Build, owned_builds, processes_under, train_config
from workflow_helpers import REPO, SNAKEFILE, make_workdir

from slm_bench.runners.stop_signals import job_trees

pytestmark = pytest.mark.slow

CELLS = ("CartPole-v1/ppo", "CartPole-v1/a2c")
EXIT_BOUND_S = 30  # from the signal to Snakemake's exit


@pytest.fixture
def builds():
    yield from owned_builds()


def stop_and_time(build: Build, sig: int) -> float:
    started = time.monotonic()
    os.kill(build.process.pid, sig)  # Snakemake alone, not its group
    try:
        build.process.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        build.kill_group()
        pytest.fail(f"Snakemake still running {EXIT_BOUND_S}s after {sig!r}:\n{build.output()}")
    return time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_snakemake_alone_stops_local_training(sig, tmp_path, builds):
    config = train_config()
    algorithms = config["envs"]["CartPole-v1"]["algorithms"]
    algorithms["a2c"] = {**algorithms["ppo"], "label": "A2C", "spec_file": "specs/a2c_classic.yaml"}
    algorithms["a2c"]["spec_name"] = "a2c_cartpole"
    workdir = make_workdir(tmp_path / "work", config)
    build = Build(workdir, "--set-threads", "run_cell=1", cores=2)  # both cells train at once
    builds.append(build)
    logs = [f"results/{cell}/train.log.partial" for cell in CELLS]
    build.wait_until(lambda: all(build.log_has(log, "frame", 2) for log in logs), "training")
    runners = [pid for pid, cmd in processes_under(workdir).items() if "slm_bench run" in cmd]
    assert len(runners) == 2, runners

    took = stop_and_time(build, sig)

    print(f"\n{sig.name}: Snakemake exited {took:.2f} s after the signal")
    output = build.output()
    assert build.process.returncode != 0
    for cell in CELLS:
        line = f"{cell}: stopped; its local run was killed, a rerun starts it again"
        assert output.count(line) == 1, output[-4000:]
    for noise in ("Traceback", "KeyboardInterrupt"):
        assert noise not in output, output[-4000:]
    assert processes_under(workdir) == {}  # no runner, no session, no job left
    assert not any((workdir / "results" / cell / "run.json").exists() for cell in CELLS)


# -- the dstack route, against the real local server -----------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from served(tmp_path_factory.mktemp("dstack-server"))


def dstack_build(server: DstackServer, workdir: Path) -> Build:
    """Snakemake with the dstack workflow profile against the real server (its env, its CLI)."""
    argv = [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--workflow-profile", str(REPO / "profiles" / "dstack"), "--profile", "none",
        str(Path("results") / CELLS[0] / "run.json"),
    ]  # fmt: skip
    env = {**server.env, "HF_TOKEN": "hf_testsecretvalue0123456789abcdefXYZ"}
    build = Build(workdir, argv=argv, env=env)
    return build


def submitted(workdir: Path, cell: str) -> bool:
    journal = workdir / "results" / cell / "journal.json"
    try:
        attempts = json.loads(journal.read_text()).get("attempts") or []
    except (OSError, ValueError):
        return False
    # past "submitting": `dstack apply` returned, the server has the run
    return bool(attempts) and attempts[-1].get("state") not in (None, "submitting")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_snakemake_alone_stops_the_dstack_wait(sig, server, tmp_path, builds):
    config = train_config()
    config.update(runner="dstack", store="hf")
    config["hf"] = {"endpoint": "http://127.0.0.1:9", "max_retries": 0}
    config["dstack"] = {"dstack_bin": server.dstack_bin, "poll_interval_s": 2}
    workdir = make_workdir(tmp_path / "work", config)
    build = dstack_build(server, workdir)
    builds.append(build)
    build.wait_until(lambda: submitted(workdir, CELLS[0]), "the run submitted")
    jobs = job_trees(build.process.pid, build.pgid)
    assert any(jobs.values()), "no job process to stop"

    took = stop_and_time(build, sig)

    print(f"\n{sig.name} (dstack): Snakemake exited {took:.2f} s after the signal")
    output = build.output()
    assert build.process.returncode != 0
    lines = [line for line in output.splitlines() if line.startswith(f"{CELLS[0]}: stopped")]
    assert len(lines) == 1, output[-6000:]
    assert " keeps running and a rerun re-attaches to it" in lines[0]  # the Ctrl-C line
    print(lines[0])
    for noise in ("Traceback", "KeyboardInterrupt"):
        assert noise not in output, output[-6000:]
    assert processes_under(workdir) == {}
    journal = json.loads((workdir / "results" / CELLS[0] / "journal.json").read_text())
    server.cli("stop", "-y", journal["attempts"][-1]["name"])  # the run this test left
