"""A test's long-lived process (a server, a daemon, a build) that dies with the pytest process
that started it, however that pytest ends: SIGKILL included, when no teardown runs.

It is the runners' own mechanism (slm_bench/runners/process_group.py): the process runs in a
process group with a keeper that kills the group once the pipe only this process holds is
closed, by ``stop()`` or by the kernel when this process dies. Here the group lives as long as
the fixture, not a ``with`` block. What it cannot reach is a process that leaves the group
(``setsid``, a daemon's double fork).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from slm_bench.runners.process_group import KEEPER, KEEPER_WAIT, OwnedGroup, owned_group, proc_stat


class OwnedProcess:
    """``argv`` started in an owned process group; ``process`` is its ``Popen``. ``on_close``:
    a command the keeper runs before it kills the group (``keeper_argv``)."""

    def __init__(
        self, argv: list[str], cwd: Path, on_close: list[str] | None = None, **popen_args: Any
    ) -> None:
        self._owner = contextlib.ExitStack()
        started = owned_group(argv, cwd, on_close=on_close, **popen_args)
        self.group: OwnedGroup = self._owner.enter_context(started)
        self.process: subprocess.Popen = self.group.process
        self.pgid = self.group.pgid

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        """``signum`` to the process, up to ``timeout_s`` for it to exit, then SIGKILL to what
        is left of its group (the keeper's). A second call does nothing."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        self._owner.close()

    def kill(self) -> None:
        """SIGKILL the whole group now."""
        self.group.kill(signal.SIGKILL)
        self._owner.close()


def running(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not), and is
    the process started at ``started`` (clock ticks since boot, ``proc_stat``) if given."""
    stat = proc_stat(pid)
    if stat is None or (started is not None and stat[2] != started):
        return False
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


def descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every live descendant of ``root``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child[0])
    return found


def group_members(pgid: int) -> list[int]:
    """The running processes of process group ``pgid``."""
    return [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit()
        and (stat := proc_stat(int(entry.name))) is not None
        and stat[1] == pgid
        and running(int(entry.name))
    ]


def is_own_keeper(pid: int) -> bool:
    """Whether ``pid`` is the keeper of a group this process owns: its child, running a keeper
    command (``keeper_argv``: each starts with the shell, its ``trap`` and its ``read``)."""
    stat = proc_stat(pid)
    if stat is None or stat[0] != os.getpid():
        return False
    try:
        shell, flag, script = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]
    except (OSError, ValueError):
        return False
    keeper = [a.encode() for a in KEEPER[:2]]
    return [shell, flag] == keeper and script.startswith(KEEPER_WAIT.encode())


def own_groups() -> list[int]:
    """The process groups this process owns (each one's id is its keeper's pid)."""
    return [
        int(e.name) for e in os.scandir("/proc") if e.name.isdigit() and is_own_keeper(int(e.name))
    ]
