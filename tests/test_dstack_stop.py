"""Remote runs end when the pipeline says so, against a real dstack server.

dstack 0.22.5 can put a stopped run back to ``pending`` (a retry on no-capacity written over the
stop; see ``slm_bench/runners/dstack/stopping.py``). The server here is the real one with that
race widened so every stop right after a no-capacity failure hits it
(``tests/dstack_server.py``, ``RACE_LAUNCHER``). Tested: the runner stops such a run again and
says so; ``cancel`` stops every recorded run the server has not finished, whatever the journal
says, and leaves none alive; ``status`` flags a run no cell waits for; a cell stopped during
``dstack apply`` says whether its run reached the server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dstack_server import DstackServer, served, use_server
from test_runner_dstack import SECRET, make_request, real_options

from slm_bench.errors import BenchError
from slm_bench.monitor.status import live_statuses, orphan_runs, render_orphans
from slm_bench.runners.dstack import (
    FINISHED_STATUSES,
    DstackRunner,
    cancel_recorded_runs,
    read_journal,
)

REPO = Path(__file__).resolve().parents[1]
CELL = "CartPole-v1/ppo"
NO_CAPACITY = "failed_to_start_due_to_no_capacity"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from served(tmp_path_factory.mktemp("dstack-race"), race_hold_s=60)


@pytest.fixture
def env(server, monkeypatch, tmp_path):
    use_server(server, monkeypatch)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    return server


def server_runs(server: DstackServer) -> list[dict]:
    done = server.cli("ps", "-a", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout[done.stdout.find("{") :])["runs"]


def alive_runs(server: DstackServer) -> list[str]:
    """Every run the server has not finished, by ``dstack ps -a --json``."""
    return [
        f"{r['run_spec']['run_name']} ({r['status']})"
        for r in server_runs(server)
        if r["status"] not in FINISHED_STATUSES
    ]


def wait_for(server: DstackServer, name: str, test, what: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = next((r for r in server_runs(server) if r["run_spec"]["run_name"] == name), None)
        if run is not None and test(run):
            return run
        time.sleep(1)
    raise AssertionError(f"run {name} never became {what}")


def test_a_stopped_run_that_comes_back_is_stopped_again(tmp_path, env):
    server = env
    request = make_request(tmp_path)
    runner = DstackRunner(real_options(server))
    lines: list[str] = []
    runner.say = lines.append
    with pytest.raises(BenchError) as error:
        runner.run(request)
    name = read_journal(request.journal_path)["attempts"][-1]["name"]
    # Back as pending, or already submitted again if dstack's retry delay ran out meanwhile.
    (again,) = [line for line in lines if "came back" in line]
    assert re.fullmatch(
        f"{CELL}: dstack run {name} came back as (pending|submitted) after it was stopped;"
        " stopping again",
        again,
    )
    message = str(error.value)
    assert message.startswith(f"{CELL}: dstack cannot start run {name}: no fleets (")
    assert re.search(
        "; the waiting run was stopped; it came back as (pending|submitted) after the stop and"
        " was stopped again \\(2 stops\\); it is terminated now; attempt 1",
        message,
    )
    # The server's own events: stopped, written back to pending by the retry, stopped again.
    events = server.cli("event", "--target-run", name).stdout
    changes = [
        line.split("Run status changed ")[1]
        for line in events.splitlines()
        if "Run status changed" in line
    ]
    # (the retry's event names the status its worker read before the stop: SUBMITTED -> PENDING)
    stopped = [i for i, change in enumerate(changes) if change.endswith("STOPPED_BY_USER")]
    back = [i for i, change in enumerate(changes) if change.endswith("-> PENDING")]
    assert len(stopped) == 2 and stopped[0] < back[-1] < stopped[1], changes
    assert changes[-1] == "TERMINATING -> TERMINATED", changes
    assert alive_runs(server) == []


def test_cancel_and_status_after_a_run_came_back_that_the_journal_calls_failed(tmp_path, env):
    """What the runner did before: one stop, the attempt journaled as failed; dstack's retry put
    the run back to pending. status flags it; cancel stops it and waits for the server."""
    server = env
    name = "old-attempt"
    (tmp_path / "task.yml").write_text(
        "type: task\ncommands: [echo hi]\nretry:\n  on_events: [no-capacity]\n  duration: 1h\n"
    )
    applied = server.cli("apply", "-f", "task.yml", "-y", "-d", "-n", name, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    wait_for(server, name, lambda r: (r["latest_job_submission"] or {}).get("termination_reason")
             == NO_CAPACITY, "failed for lack of capacity")  # fmt: skip
    assert server.cli("stop", "-y", name).returncode == 0
    # Back to pending, or already submitted again when dstack's retry delay has run out.
    wait_for(server, name, lambda r: r["status"] in ("pending", "submitted"), "alive again")
    journal_path = tmp_path / "cell" / "journal.json"
    journal_path.parent.mkdir()
    attempt = {"name": name, "state": "failed", "run": {"name": name, "status": "failed"}}
    journal_path.write_text(json.dumps({"dstack_bin": server.dstack_bin, "attempts": [attempt]}))

    live = live_statuses(server.dstack_bin)
    orphans = orphan_runs(CELL, journal_path, live)
    assert orphans == [f"{name} ({CELL}, {live[name]['status']}; the journal says failed)"]
    assert live[name]["status"] in ("pending", "submitted")
    warning = render_orphans(orphans)
    assert warning.startswith("WARNING: 1 dstack run(s) alive on the server that no cell waits for")
    assert "snakemake --workflow-profile profiles/dstack cancel" in warning

    outcomes = cancel_recorded_runs([journal_path])
    assert [(o.name, o.ended, o.status) for o in outcomes] == [(name, True, "terminated")]
    assert alive_runs(server) == []  # the number the issue asks for: 0
    assert orphan_runs(CELL, journal_path, live_statuses(server.dstack_bin)) == []
    assert read_journal(journal_path)["attempts"][-1]["state"] == "failed"


# -- a cell stopped during `dstack apply` ---------------------------------------------------

# The real CLI and server, except that `apply` blocks: before it runs (the run never reaches the
# server) or after (it did). The real server cannot be made to block one apply while it still
# answers the `ps` the runner's check needs.
BLOCKING_APPLY = """#!/bin/sh
if [ "$1" = apply ]; then
  if [ "$BLOCK" = before ]; then touch "$MARK"; exec sleep 600; fi
  "$REAL_DSTACK" "$@" || exit $?
  touch "$MARK"
  exec sleep 600
fi
exec "$REAL_DSTACK" "$@"
"""

RUNNER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_runner_dstack import make_request, real_options
from dstack_server import DstackServer
from slm_bench.runners.dstack import DstackRunner
server = DstackServer(Path(sys.argv[2]), Path(sys.argv[1]))
DstackRunner(real_options(server, dstack_bin=sys.argv[4])).run(make_request(Path(sys.argv[1])))
"""


@pytest.mark.parametrize("block", ["before", "after"])
def test_a_cell_stopped_during_apply_says_whether_its_run_was_submitted(tmp_path, env, block):
    server = env
    wrapper = tmp_path / "dstack"
    wrapper.write_text(BLOCKING_APPLY)
    wrapper.chmod(0o755)
    mark = tmp_path / "in-apply"
    child_env = {**os.environ, "PYTHONPATH": str(REPO), "REAL_DSTACK": server.dstack_bin}
    child_env.update(BLOCK=block, MARK=str(mark))
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path), str(server.venv), str(REPO / "tests"),
         str(wrapper)],
        env=child_env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not mark.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the runner never reached dstack apply"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # what Snakemake sends its jobs
    assert process.wait(timeout=60) == 130
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    (attempt,) = read_journal(tmp_path / "cell" / "journal.json")["attempts"]
    assert attempt["state"] == "submitting"  # the journal cannot tell: the server decides
    name = attempt["name"]
    (line,) = [line for line in stderr.splitlines() if line.startswith(f"{CELL}: stopped")]
    listed = [r for r in server_runs(server) if r["run_spec"]["run_name"] == name]
    if block == "before":
        assert listed == []
        assert line == (
            f"{CELL}: stopped during dstack apply; dstack run {name} was not submitted (the"
            " server has no run of that name); nothing of this cell is left running; a rerun"
            " submits it"
        )
        return
    assert listed, "the apply that returned created the run"
    assert line.startswith(f"{CELL}: stopped waiting; dstack run {name} (")
    assert "keeps running and a rerun re-attaches to it" in line
    cancel_recorded_runs([tmp_path / "cell" / "journal.json"], dstack_bin=server.dstack_bin)
    assert alive_runs(server) == []


# -- a run that never ends after a stop (a stand-in: a real server ends every stopped run) -----


def test_a_run_that_never_ends_after_its_stops_fails_the_cell_in_bounded_time(
    tmp_path, monkeypatch
):
    from standins import use_standin
    from test_runner_dstack import options, recorded_job

    from slm_bench.runners.dstack import stopping

    standin = use_standin(tmp_path, monkeypatch, SECRET)
    monkeypatch.setattr(stopping, "STOP_WAIT_S", 1.0)
    pending = {"status": "pending", **recorded_job("pending")}
    standin.scenario({"default": [{"status": "submitted"}, pending], "stop_ignored": True})
    request = make_request(tmp_path)
    started = time.monotonic()
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin)).run(request)
    assert time.monotonic() - started < 30
    message = str(error.value)
    stops = len(standin.calls("stop"))
    assert stops >= 2
    assert (
        "; the waiting run was stopped but is still pending on the server 1s later; it came back"
        f" as pending after the stop and was stopped again ({stops} stops); stop it: dstack stop"
        " -y ppo-cartpole (then check: dstack ps -a); attempt 1 of this cell"
    ) in message
    assert "\n" not in message

    outcomes = cancel_recorded_runs([request.journal_path], dstack_bin=standin.dstack_bin)
    assert [(o.name, o.ended, o.status) for o in outcomes] == [("ppo-cartpole", False, "pending")]
