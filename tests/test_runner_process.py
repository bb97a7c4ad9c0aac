"""Local process runners: time limit, exit codes, missing commands, progress lines."""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from run_folder_helpers import slm_lab_python
from runner_helpers import python_runner, request

from slm_bench.errors import BenchError
from slm_bench.runners import process as process_module
from slm_bench.runners.process import embedded_runner, slm_lab_runner

REPO = Path(__file__).resolve().parents[1]


def test_time_limit_stops_the_run_and_its_children(tmp_path):
    # The program starts a child that would outlive it; the whole process group must go.
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"CartPole-v1/ppo: run exceeded the time limit"):
        python_runner(code).run(request(tmp_path, time_limit_s=1.0))
    assert time.monotonic() - started < 15
    assert "started" in (tmp_path / "train.log.partial").read_text()


def test_failed_run_reports_exit_code_and_last_lines(tmp_path):
    code = "import sys; print('line one'); print('boom: spec broke'); sys.exit(3)"
    with pytest.raises(BenchError) as error:
        python_runner(code).run(request(tmp_path))
    assert "exited with 3: line one / boom: spec broke" in str(error.value)


def test_run_without_a_data_folder_in_its_log_fails(tmp_path):
    with pytest.raises(BenchError, match="no data folder in the run's log"):
        python_runner("print('hello')").run(request(tmp_path))


def test_run_finds_the_folder_from_the_log(tmp_path):
    code = (
        "import os; os.makedirs('data/x_2026_01_01_000000/info'); "
        "print('SLM-Lab: Running specs/x.yaml x train with 1 sessions "
        "| output: data/x_2026_01_01_000000/x_t0')"
    )
    result = python_runner(code).run(request(tmp_path))
    assert result.data_folder == "x_2026_01_01_000000"
    assert result.folder_path == tmp_path / "work" / "data" / "x_2026_01_01_000000"


def test_missing_slm_lab_names_the_fix(tmp_path):
    runner = slm_lab_runner({"command": "slm-lab-missing", "checkout": str(tmp_path)})
    with pytest.raises(BenchError) as error:
        runner.run(request(tmp_path))
    assert str(error.value) == (
        "runner slm-lab: command 'slm-lab-missing' not found; install SLM-Lab in its checkout "
        "(`uv sync` there, then put `slm-lab` on PATH) or choose runner: embedded"
    )


def test_slm_lab_runner_uploads_with_the_hf_store(tmp_path):
    runner = slm_lab_runner({"checkout": str(tmp_path), "store": "hf"})
    argv = runner.argv(request(tmp_path), "slm_lab/spec/x.yaml")
    assert argv == [
        "slm-lab", "run", "-s", "max_frame=2000", "--upload-hf", "--", "slm_lab/spec/x.yaml", "x",
        "train",
    ]  # fmt: skip
    assert "--upload-hf" not in slm_lab_runner({"checkout": str(tmp_path)}).argv(
        request(tmp_path), "x.yaml"
    )


def test_progress_turns_checkpoint_summaries_into_one_line(tmp_path, capfd):
    """A real run printing SLM-Lab's summaries: one line with the cell's share, session k of n
    and its frame; a second summary within PROGRESS_EVERY_S is not echoed."""
    summaries = [
        "2026-11-27 15:58:34 | INFO | PID:1 | __init__:log_summary | Trial 0 session 1 "
        "dqn_cartpole_t0_s1 [train]",
        "total_reward:120.90    total_reward_ma:58.09  loss:0.5563            fps:1111",
        "frame:2.00e+04         wall_t:18              t:5000                 epi:369",
        "opt_step:2374          lr:0.001               explore_var:0.05019",
        "2026-11-27 15:58:35 | INFO | PID:1 | __init__:log_summary | Trial 0 session 0 "
        "dqn_cartpole_t0_s0 [train]",
        "total_reward:116.74    total_reward_ma:57.30  loss:0.689             fps:1111",
        "frame:2.00e+04         wall_t:18              t:5000                 epi:361",
    ]
    code = f"print({chr(10).join(summaries)!r})"
    sized = replace(request(tmp_path), max_session=4, max_frame=200000)
    with pytest.raises(BenchError, match="no data folder"):  # only summaries: no run folder
        python_runner(code).run(sized)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("[")]
    assert len(lines) == 1
    # The cell's share (4 sessions of 2e5 frames), the session's own frame beside it; one
    # summary per session gives no rate yet, so no ETA.
    assert lines[0] == (
        "[CartPole-v1/ppo] cell 2% (20000/800000 frames) | session 2/4 frame 20000/200000 "
        "| total_reward_ma 58.09 | fps 1111"
    )


# -- options end at `--`: a spec name starting with `-` is a name --------------------------------


def test_argv_ends_options_before_the_positional_arguments(tmp_path):
    dashed = replace(request(tmp_path), spec_name="--help", sets={"a": "x y", "b": "-1"})
    argv = embedded_runner({"workers": 2}).argv(dashed, "-spec.yaml")
    assert argv[-4:] == ["--", "-spec.yaml", "--help", "train"]
    assert argv[argv.index("--") - 4 : argv.index("--")] == ["-s", "a=x y", "-s", "b=-1"]


def test_embedded_runner_takes_a_dashed_spec_name_as_a_name(tmp_path):
    (tmp_path / "work").mkdir()
    spec = REPO / "specs" / "ppo_classic.yaml"
    dashed = replace(request(tmp_path), spec_file=str(spec), spec_name="-ppo_cartpole")
    with pytest.raises(BenchError) as raised:
        embedded_runner({}).run(dashed)
    message = str(raised.value)
    # The name reached the spec lookup (not argparse's option parsing).
    assert "no spec named '-ppo_cartpole'" in message and "exited with 1" in message
    assert "unrecognized arguments" not in message and "usage:" not in message


def test_real_slm_lab_run_parses_the_argv_with_a_dashed_name(tmp_path):
    runner = slm_lab_runner({"checkout": str(tmp_path), "store": "hf"})
    dashed = replace(request(tmp_path), spec_name="-ppo_cartpole", sets={"max_frame": "5e3"})
    argv = runner.argv(dashed, "slm_lab/spec/benchmark/ppo/ppo_cartpole.json")
    assert argv[:2] == ["slm-lab", "run"]
    # SLM-Lab's own typer command parses the arguments (without running anything).
    code = (
        "import json, sys, typer; from slm_lab.cli import app; "
        "run = typer.main.get_command(app).commands['run']; "
        "params = run.make_context('run', sys.argv[1:]).params; "
        "print(json.dumps({k: params[k] for k in "
        "('spec_file', 'spec_name', 'mode', 'sets', 'upload_hf')}))"
    )
    done = subprocess.run(
        [str(slm_lab_python()), "-c", code, *argv[2:]], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "spec_file": "slm_lab/spec/benchmark/ppo/ppo_cartpole.json",
        "spec_name": "-ppo_cartpole",
        "mode": "train",
        "sets": ["max_frame=5e3"],
        "upload_hf": True,
    }


# -- time limit ----------------------------------------------------------------------------------


def test_a_huge_time_limit_does_not_overflow_the_watchdog(tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    code = (
        "import time; time.sleep(0.5); print('SLM-Lab: Running specs/x.yaml x train with 1 "
        "sessions | output: data/x_2026_01_01_000000/x_t0')"
    )
    result = python_runner(code).run(request(tmp_path, time_limit_s=1e300))
    assert result.data_folder == "x_2026_01_01_000000"
    assert errors == []  # an OverflowError in the timer thread would land here


def test_the_limit_is_enforced_across_watchdog_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(process_module, "WATCHDOG_STEP_S", 0.2)
    started = time.monotonic()
    with pytest.raises(BenchError, match="run exceeded the time limit"):
        python_runner("import time; time.sleep(60)").run(request(tmp_path, time_limit_s=1.0))
    assert 0.9 < time.monotonic() - started < 10


@pytest.mark.parametrize("limit", [0, -1, math.nan, math.inf])
def test_a_time_limit_that_cannot_be_enforced_is_refused_before_the_run(tmp_path, limit):
    with pytest.raises(BenchError, match=r"^CartPole-v1/ppo: time_limit .*: expected"):
        python_runner("open('ran', 'w')").run(request(tmp_path, time_limit_s=limit))
    assert not (tmp_path / "work" / "ran").exists()
