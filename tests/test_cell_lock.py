"""A cell's writer lock against real processes: live holders refuse, dead ones are taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.trust.cell_lock import Holder, cell_writer, process_start

REPO = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from pathlib import Path
from slm_bench.trust.cell_lock import cell_writer
with cell_writer(Path(sys.argv[1]), "run_cell"):
    Path(sys.argv[2]).write_text("held")
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A real job process holding the cell's lock."""
    held = tmp_path / "held"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "cell"), str(held)], env=env
    )
    deadline = time.monotonic() + 30
    while not held.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    yield process
    process.kill()
    process.wait()


def lock_of(tmp_path: Path) -> Path:
    return tmp_path / "cell" / ".run_cell.lock"


def record(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_live_holder_is_named_in_one_line(tmp_path, holder):
    with pytest.raises(BenchError) as refused, cell_writer(tmp_path / "cell", "run_cell"):
        pytest.fail("entered a cell another job writes")
    message = str(refused.value)
    host = socket.gethostname()
    assert message.startswith(f"{lock_of(tmp_path)}: this cell is being written by run_cell")
    assert f"(pid {holder.pid} on {host}, since " in message and "\n" not in message
    assert message.endswith(f"stop it with `kill {holder.pid}` or wait for it, then rerun")
    assert record(lock_of(tmp_path))["pid"] == holder.pid  # the holder's record is untouched


def test_a_killed_holders_lock_is_taken_over_silently(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert record(lock_of(tmp_path))["pid"] == holder.pid  # left behind by the killed job

    with cell_writer(tmp_path / "cell", "run_cell"):
        assert record(lock_of(tmp_path))["pid"] == os.getpid()
    assert not lock_of(tmp_path).exists()  # a clean exit leaves nothing


def write_record(tmp_path: Path, holder: Holder) -> None:
    lock_of(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    lock_of(tmp_path).write_text(json.dumps(asdict(holder)))


def test_a_recycled_pid_is_not_a_live_holder(tmp_path):
    # A record without its flock naming a pid that now belongs to another process.
    with subprocess.Popen(["sleep", "60"]) as other:
        other_start = process_start(other.pid)
        assert other_start is not None
        write_record(tmp_path, replace(Holder.me("run_cell"), pid=other.pid, started=1))
        with cell_writer(tmp_path / "cell", "run_cell"):
            assert record(lock_of(tmp_path))["pid"] == os.getpid()
        other.kill()


def test_a_live_recorded_holder_without_the_flock_still_refuses(tmp_path):
    # E.g. a lock on a filesystem whose flock did not reach the holder: the record decides.
    with subprocess.Popen(["sleep", "60"]) as other:
        live = replace(Holder.me("run_cell"), pid=other.pid, started=process_start(other.pid))
        write_record(tmp_path, live)
        refused = pytest.raises(BenchError, match=f"by run_cell \\(pid {other.pid} on ")
        with refused, cell_writer(tmp_path / "cell", "run_cell"):
            pytest.fail("entered a cell a live process writes")
        other.kill()


def test_a_holder_on_another_host_cannot_be_checked_and_refuses(tmp_path):
    write_record(tmp_path, replace(Holder.me("run_cell"), host="gpu-box-7", pid=4242))
    with pytest.raises(BenchError) as refused, cell_writer(tmp_path / "cell", "run_cell"):
        pytest.fail("entered a cell held on another host")
    message = str(refused.value)
    assert "held by run_cell (pid 4242 on gpu-box-7, since " in message
    assert f"cannot be checked from {socket.gethostname()}" in message
    assert f"delete {lock_of(tmp_path)} and rerun" in message
    assert record(lock_of(tmp_path))["host"] == "gpu-box-7"


def test_a_damaged_record_holds_nothing(tmp_path):
    lock_of(tmp_path).parent.mkdir(parents=True)
    lock_of(tmp_path).write_text('{"job": "run_c')  # a holder killed while writing it
    with cell_writer(tmp_path / "cell", "run_cell"):
        assert record(lock_of(tmp_path))["pid"] == os.getpid()
