"""Two builds of one tree (a second ``--nolock`` run): what collides is one line that names the
path and what happened, never a dump of log lines ending in an error without a path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest
from runner_helpers import python_runner, request
from workflow_helpers import error_lines, make_workdir, snakemake_argv, tiny_config

from slm_bench.errors import BenchError


def test_a_run_whose_folder_another_build_replaced_says_so_naming_it(tmp_path):
    # The run waits for its folder to be replaced (as a second build's run_cell does: remove,
    # then make again), then fails the way a session does when its working folder is gone.
    code = (
        "import os, time\n"
        "print('started', flush=True)\n"
        "while os.path.exists('../go') is False: time.sleep(0.05)\n"
        "os.getcwd()\n"
    )
    work = tmp_path / "work"

    def replace_folder() -> None:
        while not (tmp_path / "train.log.partial").exists():
            time.sleep(0.05)
        time.sleep(0.3)
        shutil.rmtree(work)
        work.mkdir()
        (tmp_path / "go").touch()

    thread = threading.Thread(target=replace_folder)
    thread.start()
    with pytest.raises(BenchError) as error:
        python_runner(code).run(request(tmp_path, time_limit_s=60.0))
    thread.join()
    assert str(error.value) == (
        f"CartPole-v1/ppo: the run's folder {work} was removed while it ran (by another build "
        "of this cell, e.g. a second --nolock run?); run one build at a time"
    )


def test_a_failed_run_reports_its_own_error_line_not_the_lines_before_it(tmp_path):
    code = (
        "import sys\n"
        "for i in range(5): print(f'INFO | a long log line {i} ' + 'x' * 200)\n"
        "print('error: specs/x.yaml: x: session 0 failed: FileNotFoundError: work/a: No such "
        "file or directory')\n"
        "sys.exit(1)\n"
    )
    with pytest.raises(BenchError) as error:
        python_runner(code).run(request(tmp_path, time_limit_s=60.0))
    assert str(error.value) == (
        f"CartPole-v1/ppo: {sys.executable} exited with 1: specs/x.yaml: x: session 0 failed: "
        "FileNotFoundError: work/a: No such file or directory"
    )


@pytest.mark.slow
def test_second_nolock_build_gives_short_lines_that_name_a_path(tmp_path):
    config = tiny_config()
    cartpole = config["envs"]["CartPole-v1"]
    cartpole["algorithms"] = {"ppo": cartpole["algorithms"]["ppo"]}
    # Long enough that the second build reaches the cell while the first still trains, even on
    # a loaded machine (at 2,000 frames the first could finish before the second had planned).
    cartpole["settings"] = {**cartpole["settings"], "max_frame": 20000}
    workdir = make_workdir(tmp_path / "work", config)
    argv = snakemake_argv(workdir, cores=1)
    first = subprocess.Popen(
        argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    partial = workdir / "results/CartPole-v1/ppo/train.log.partial"
    deadline = time.monotonic() + 300
    while not partial.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    second = subprocess.run(
        [*argv, "--nolock"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=900,
    )  # fmt: skip
    first_out, _ = first.communicate(timeout=900)

    lines = error_lines(first_out) + error_lines(second.stdout)
    assert lines, "the two builds did not collide"
    for line in lines:
        assert len(line) < 300, line
        assert not line.endswith("No such file or directory"), line  # a path or nothing
    assert " / " not in "".join(lines)  # no log lines spliced into the error
