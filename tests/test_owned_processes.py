"""Every process has an owner: nothing of a cell outlives its build, and a cell has one writer.

Real Snakemake runs of the embedded runner, real signals. A SIGKILL of the build's whole process
group (what `kill -9 -PGID`, an OOM kill of the session or a CI time-out does) lands at each point
of a run: mid-training, during a search's start, mid-trial, between two trials. Then no process
of the cell may be alive 5 s later. The processes of a cell are found in /proc: any process whose
working directory or command line is inside the test's working directory (Snakemake, the job, the
runner, a search's trials, every session process).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from process_helpers import LONG, Build, owned_builds, processes_under, train_config
from workflow_helpers import error_lines, make_workdir, snakemake

pytestmark = pytest.mark.slow

TINY_SEARCH = Path(__file__).parent / "fixtures" / "search" / "tiny_search.yaml"
CELL = Path("results/CartPole-v1/ppo")
SEARCH_TARGET = str(CELL / "search" / "best.json")


@pytest.fixture
def builds():
    yield from owned_builds()


def search_workdir(path: Path, max_frame: int = LONG) -> Path:
    settings = {"max_frame": max_frame, "num_envs": 1, "max_session": 1, "log_frequency": 500}
    ppo = {"label": "PPO", "spec_file": "specs/tiny_search.yaml", "spec_name": "ppo_tiny"}
    envs = {"CartPole-v1": {"settings": settings, "target": "> 400", "algorithms": {"ppo": ppo}}}
    workdir = make_workdir(path, {"runner": "embedded", "store": "local", "seed": 7, "envs": envs})
    shutil.copy(TINY_SEARCH, workdir / "specs" / "tiny_search.yaml")
    return workdir


def assert_nothing_left(build: Build, before: dict[int, str]) -> None:
    # The check can fail: before the kill it saw the runner and its training processes.
    assert any("slm_bench run" in command for command in before.values()), before
    assert len(before) >= 4, before  # Snakemake, the job, the keeper, the runner (+ more)
    build.kill_group()
    time.sleep(5)
    left = processes_under(build.workdir)
    print(f"\n{len(before)} processes of the cell before the SIGKILL, {len(left)} alive 5 s after")
    assert left == {}, f"{len(left)} processes of the cell alive 5 s after SIGKILL: {left}"


POINTS = {
    # point: (search?, pause hook, (log file, text, count) to wait for)
    "mid-training": (False, "", ("results/CartPole-v1/ppo/train.log.partial", "frame", 3)),
    "search start": (True, "mkdtemp:.search-", None),
    "mid-trial": (True, "", ("results/CartPole-v1/ppo/search/search.log.partial", "frame", 3)),
    "between trials": (True, "popen-cwd:trial_1", None),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_of_the_build_leaves_no_process_of_the_cell(point, tmp_path, builds):
    search, pause, log_text = POINTS[point]
    if point == "between trials":  # trial 0 must end first: a short trial 0, one at a time
        workdir = search_workdir(tmp_path / "work", max_frame=1000)
    elif search:
        workdir = search_workdir(tmp_path / "work")
    else:
        workdir = make_workdir(tmp_path / "work", train_config())
    args = (SEARCH_TARGET,) if search else ()
    build = Build(workdir, *args, cores=1 if search else 2, pause=pause)
    builds.append(build)
    if pause:
        build.wait_until(build.paused.exists, point)
    else:
        build.wait_until(lambda: build.log_has(*log_text), point)
    before = processes_under(workdir)
    if point == "mid-trial":  # a trial and its session are running
        assert any("trial_spec.json" in command for command in before.values()), before

    assert_nothing_left(build, before)


def test_a_second_build_of_a_running_cell_refuses_and_a_stale_lock_is_taken_over(tmp_path, builds):
    workdir = search_workdir(tmp_path / "work")
    first = Build(workdir, SEARCH_TARGET, cores=1, name="first")
    builds.append(first)
    partial = "results/CartPole-v1/ppo/search/search.log.partial"
    first.wait_until(lambda: first.log_has(partial, "frame"), "the first search's training")
    runner = [
        pid
        for pid, command in processes_under(workdir).items()
        if " search_cell " in command and "bash" not in command.split()[0]
    ]

    # A second instance beside it (Snakemake's own lock bypassed, as --unlock or --nolock do).
    second = snakemake(workdir, SEARCH_TARGET, "--nolock", cores=1, timeout=300)

    assert second.returncode != 0
    (line,) = [line for line in error_lines(second.stdout) if "being written by" in line]
    lock = workdir / CELL / ".search_cell.lock"
    assert line.startswith(f"error: {CELL}/.search_cell.lock: this cell is being written by")
    assert f"search_cell (pid {runner[0]} on {os.uname().nodename}, since " in line, (line, runner)
    assert line.endswith(f"stop it with `kill {runner[0]}` or wait for it, then rerun")
    assert first.process.poll() is None  # the first search goes on, its log untouched by a second
    assert first.log_has(partial, "Optuna search: 2 trials", 1)
    assert not first.log_has(partial, "Optuna search: 2 trials", 2)

    before = processes_under(workdir)
    assert_nothing_left(first, before)
    assert lock.exists()  # left by the killed job: stale

    # The stale lock is taken over silently: a rerun searches again.
    assert snakemake(workdir, "--unlock").returncode == 0
    (workdir / partial).unlink()
    rerun = Build(workdir, SEARCH_TARGET, cores=1, name="rerun")
    builds.append(rerun)
    rerun.wait_until(lambda: rerun.log_has(partial, "frame"), "the rerun's training")
    assert "being written by" not in rerun.output()
    assert f'"pid": {runner[0]},' not in lock.read_text()
    rerun.kill_group()
