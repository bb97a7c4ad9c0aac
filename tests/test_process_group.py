"""An owned group's keeper outlives a stop signal to the whole group (slm_bench/runners/
process_group.py): a member that ignores the signal still dies once the group's owner ends.

Real processes and signals: a child Python process owns a group whose member ignores the signal
(``trap '' SIG`` in its shell, inherited by its ``sleep``), the whole group gets that signal as a
time limit, a stop or a terminal's hangup would send it, then the owner is SIGKILLed or leaves
its ``owned_group`` block. Nothing of the group may be left ``GONE_BOUND_S`` later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from owned_process import group_members, is_own_keeper

from slm_bench.runners.process_group import OWNED_GROUP_ENV, keeper_argv, owned_group

GONE_BOUND_S = 10
SETTLE_S = 0.5  # time for a signal's effect (a handler, a death) to show in /proc

# The owner: start the group, say its id, wait for a line on stdin, then leave the block.
OWNER = """
import sys
from pathlib import Path
from slm_bench.runners.process_group import owned_group
member, on_close, root = sys.argv[1], sys.argv[2:] or None, Path.cwd()
with owned_group(["/bin/sh", "-c", member], root, on_close=on_close) as group:
    (root / "group").write_text(str(group.pgid))
    sys.stdin.readline()
print("closed", flush=True)
"""


def start_owner(tmp_path: Path, signame: str, on_close: list[str]) -> tuple[subprocess.Popen, int]:
    member = f"trap '' {signame}; sleep 600"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, member, *on_close],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "group").exists():
        assert owner.poll() is None and time.monotonic() < deadline, "the owner never started"
        time.sleep(0.05)
    time.sleep(SETTLE_S)  # the member's shell has set its trap and started its sleep
    return owner, int((tmp_path / "group").read_text())


def gone_within(pgid: int, bound_s: float) -> list[int]:
    deadline = time.monotonic() + bound_s
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


CASES = [
    ("TERM", "SIGKILL", False),  # a stop or a time limit, then the job is killed
    ("INT", "SIGKILL", False),  # Ctrl-C
    ("HUP", "SIGKILL", False),  # the terminal closed
    ("TERM", "close", False),  # a stop, then the job leaves its block
    ("TERM", "SIGKILL", True),  # with on_close, which still runs
]


@pytest.mark.parametrize(("signame", "end", "with_on_close"), CASES)
def test_a_member_that_survives_a_signal_to_the_group_dies_with_its_owner(
    signame, end, with_on_close, tmp_path
):
    mark = tmp_path / "closed"
    # on_close records its signal dispositions: the keeper's ignored ones are not passed on.
    on_close = ["/bin/sh", "-c", f"grep SigIgn /proc/self/status > {mark}"] if with_on_close else []
    owner, pgid = start_owner(tmp_path, signame, on_close)
    try:
        members = group_members(pgid)
        assert len(members) == 3, members  # the keeper, the member's shell and its sleep

        os.killpg(pgid, getattr(signal, f"SIG{signame}"))
        time.sleep(SETTLE_S)
        # The member survived the signal: else the check below could not fail.
        member = sorted(pid for pid in members if pid != pgid)
        assert sorted(pid for pid in group_members(pgid) if pid != pgid) == member

        if end == "SIGKILL":
            owner.kill()
            owner.wait()
        else:
            out, _ = owner.communicate("\n", timeout=GONE_BOUND_S)
            assert owner.returncode == 0 and out == "closed\n", (owner.returncode, out)
        left = gone_within(pgid, GONE_BOUND_S)
        assert left == [], f"alive {GONE_BOUND_S} s after the owner's end: {left}"
    finally:  # a failed check leaves nothing running
        owner.kill()
        owner.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    if with_on_close:
        ignored = int(mark.read_text().split()[1], 16)
        assert not ignored & (1 << (signal.SIGTERM - 1)), mark.read_text()


def test_the_keeper_is_recognised_with_and_without_on_close(tmp_path):
    """``is_own_keeper`` (what the tests use to tell an owner's keepers from leftovers) knows
    both keeper commands."""
    for on_close in (None, ["true"]):
        with owned_group(["sleep", "600"], tmp_path, on_close=on_close) as group:
            assert is_own_keeper(group.pgid), keeper_argv(on_close)
            assert not is_own_keeper(group.process.pid)


# Prints whether it is in an owned group, then whether its child in a group of its own is.
IN_GROUP = "from slm_bench.runners.process_group import in_owned_group; print(in_owned_group())"
CHECK = f"""
import subprocess, sys
{IN_GROUP}
argv = [sys.executable, "-c", {IN_GROUP!r}]
print(subprocess.run(argv, process_group=0, capture_output=True, text=True).stdout, end="")
"""


def test_only_a_member_of_an_owned_group_counts_as_owned(tmp_path):
    """``in_owned_group`` (which tells a standalone ``slm-bench run`` to own its run): true in
    the group ``owned_group`` started, false in a process that left it with the same
    environment, and in one started outside it."""
    check = [sys.executable, "-c", CHECK]
    with owned_group(check, tmp_path, stdout=subprocess.PIPE, text=True) as group:
        out, _ = group.process.communicate(timeout=60)
    assert out.split() == ["True", "False"]
    env = {k: v for k, v in os.environ.items() if k != OWNED_GROUP_ENV}
    outside = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
    assert outside.stdout.split() == ["False", "False"], outside.stderr
