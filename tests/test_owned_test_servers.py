"""Every process a test's fixture starts ends with the test process that started it, even when
that process is SIGKILLed and no teardown runs (tests/owned_process.py).

A child Python process starts the real fixture server (the dstack server, the test Hub with
olah, Chromium's driver, the Slurm test cluster with a running job), says which process groups
it owns, then is SIGKILLed, or stops the server as a fixture's teardown does and exits. Every
process it had started (found in /proc as its descendants, and every member of its groups) must
be gone within ``GONE_BOUND_S``; so must the processes of the cluster's job, which slurmstepd runs
in sessions of their own.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser import INSTALL_HINT
from dstack_server import dstack_venv
from owned_process import descendants, group_members, own_groups, running
from slurm_cluster import skip_reason

from slm_bench.runners.process_group import owned_group

TESTS = Path(__file__).resolve().parent
GONE_BOUND_S = 10

# The child: start the server of ``kind`` under ``root``, write what it owns to
# ``root/report.json``, then wait to be killed, or (``teardown``) stop it once told and exit.
CHILD = """
import json, signal, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from owned_process import own_groups
kind, root, end = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "dstack":
    from dstack_server import DstackServer, dstack_venv
    server = DstackServer(dstack_venv(), root).start()
    urls, stop = [server.url], server.stop
elif kind == "hub":
    import contextlib
    from conftest_hf import olah_served
    from hub_server import HubServer
    hub = HubServer(root / "hub").start()  # threads of this process
    stack = contextlib.ExitStack()
    olah_url, _ = stack.enter_context(olah_served(root))
    urls, stop = [hub.url, olah_url], lambda: (stack.close(), hub.stop())
elif kind == "browser":
    from browser import browser
    session = browser()
    session.get("data:text/html,<p>owned</p>")
    urls, stop = [f"http://127.0.0.1:{session.port}/status"], session.close
elif kind == "slurm":
    from slurm_cluster import SlurmCluster
    cluster = SlurmCluster(root / "cluster").start()
    script = root / "job.sh"
    script.write_text("#!/bin/sh\\nsetsid sleep 900 &\\nexec sleep 901\\n")
    job = cluster.run("sbatch", "--parsable", "-o", str(root / "job.out"), str(script))
    cluster.wait_for_state(job.strip().split(";")[0], {"RUNNING"}, 60)
    deadline = time.monotonic() + 30
    while len(cluster.job_processes()) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)  # slurmstepd, then the script's two sleeps
    urls, stop = [], cluster.stop
report = {"groups": own_groups(), "urls": urls}
if kind == "slurm":
    report["jobs"] = sorted(cluster.job_processes())
(root / "report.json").write_text(json.dumps(report))
if end == "teardown":
    while not (root / "go").exists():
        time.sleep(0.05)
    stop()
    (root / "stopped").touch()
else:
    signal.pause()
"""

# kind -> how many process groups the child owns
GROUPS = {
    "dstack": 1,
    "hub": 1,  # olah; the Hub server is threads of the child
    "browser": 1,  # chromedriver, and the Chromium it starts
    "slurm": 5,  # munged, mariadbd, slurmdbd, slurmctld, slurmd
}


def skip_if_missing(kind: str) -> None:
    reason = None
    if kind == "dstack" and dstack_venv() is None:
        reason = "no dstack venv: set SLM_BENCH_DSTACK_VENV (pip install 'dstack[server]==0.22.5')"
    elif kind == "hub":
        pytest.importorskip("olah")
    elif kind == "browser" and not (shutil.which("chromium") and shutil.which("chromedriver")):
        reason = INSTALL_HINT
    elif kind == "slurm":
        reason = skip_reason()
    if reason:
        pytest.skip(reason)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def left(started: set[tuple[int, int]], groups: list[int], jobs: list[int]) -> list[int]:
    """What still runs of the child's descendants, its groups and its cluster's job."""
    alive = {pid for pid, at in started if running(pid, at)} | {p for p in jobs if running(p)}
    return sorted(alive.union(*(group_members(group) for group in groups)))


def start_child(kind: str, root: Path, end: str) -> tuple[subprocess.Popen, dict]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(root), end, str(TESTS)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    report, deadline = root / "report.json", time.monotonic() + 300
    while not report.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the {kind} child never started its server:\n{child.communicate()[0]}")
        time.sleep(0.2)
    time.sleep(0.2)  # the report is written in one call; let it land
    return child, json.loads(report.read_text())


@pytest.mark.parametrize("end", ["SIGKILL", "teardown"])
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("dstack", marks=pytest.mark.slow),
        "hub",
        pytest.param("browser", marks=pytest.mark.slow),
        pytest.param("slurm", marks=[pytest.mark.slow, pytest.mark.xdist_group("slurm")]),
    ],
)
def test_a_fixture_server_ends_with_its_test_process(kind, end, tmp_path):
    skip_if_missing(kind)
    child, report = start_child(kind, tmp_path, end)
    groups, jobs = report["groups"], report.get("jobs", [])
    started = descendants(child.pid)
    # The check can fail: the server runs, in as many owned groups as it should.
    assert len(groups) == GROUPS[kind], report
    assert all(group_members(group) for group in groups), report
    assert all(answers(url) for url in report["urls"]), report
    if kind == "slurm":
        assert len(jobs) >= 3 and all(running(pid) for pid in jobs), report
    counted = len(left(started, groups, jobs))

    t0 = time.monotonic()
    if end == "SIGKILL":
        child.send_signal(signal.SIGKILL)
    else:
        (tmp_path / "go").touch()
    child.wait(timeout=120)
    deadline = t0 + (GONE_BOUND_S if end == "SIGKILL" else 120)
    while (alive := left(started, groups, jobs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    took = time.monotonic() - t0
    print(f"\n{kind} {end}: {counted} processes, all gone {took:.2f} s after the {end}")
    assert alive == [], f"alive {took:.1f} s after the {end}: {alive}"
    assert not any(answers(url) for url in report["urls"]), report
    if end == "teardown":
        assert child.returncode == 0 and (tmp_path / "stopped").exists(), child.stdout.read()


def test_on_close_runs_before_the_group_dies_even_when_its_owner_is_killed(tmp_path):
    """owned_group's ``on_close``: the keeper runs it (here: it records that it ran) before it
    kills the group, when its owner is SIGKILLed as when it closes the group itself."""
    code = (
        "import sys, signal\n"
        "from pathlib import Path\n"
        "from slm_bench.runners.process_group import owned_group\n"
        "mark = Path(sys.argv[1])\n"
        "with owned_group(['sleep', '600'], mark.parent, on_close=['touch', str(mark)]) as g:\n"
        "    (mark.parent / 'group').write_text(str(g.pgid))\n"
        "    signal.pause()\n"
    )
    mark = tmp_path / "closed"
    child = subprocess.Popen([sys.executable, "-c", code, str(mark)])
    deadline = time.monotonic() + 30
    while not (tmp_path / "group").exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    pgid = int((tmp_path / "group").read_text())
    assert len(group_members(pgid)) == 2 and not mark.exists()  # the keeper and the sleep
    child.kill()
    child.wait()
    deadline = time.monotonic() + GONE_BOUND_S
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(pgid) == [] and mark.exists()

    mark.unlink()
    with owned_group(["sleep", "600"], tmp_path, on_close=["touch", str(mark)]) as group:
        assert group.process.poll() is None and not mark.exists()
    assert mark.exists() and group.process.returncode == -signal.SIGKILL
    assert own_groups() == []
