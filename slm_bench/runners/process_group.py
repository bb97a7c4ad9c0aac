"""A local run's processes die with the job that started them, however that job ends.

A runner runs in a process group of its own, so that a time-out or a stop kills every session,
search trial and trial session it started at once. That also puts it out of reach of a signal to
Snakemake's group, and a SIGKILL of the build, which no handler sees, used to leave the runner,
a search's trials and their sessions running. So each such group has a keeper: a tiny ``sh`` in
the group, blocked reading a pipe whose only write end the job holds. The kernel closes that end
when the job exits for any reason, SIGKILL included; the keeper's read then returns and it kills
its whole group, itself last. When the run ends normally the job closes the pipe itself, which
also removes any process the runner left behind. A signal to the whole group (a stop's SIGTERM,
Ctrl-C, a hangup) does not end the keeper: the job's closing the pipe does.

``slm-bench run`` started by its user, in no owned group, owns one the same way (``run_owned``):
it runs the same command as its child in a group it owns, so a ``kill -9`` of it, or the OOM
killer's, ends its session workers and a search's trials too. The child, marked as owned
(``OWNED_GROUP_ENV``), and whatever it starts (a search's trials) do not own another.

Why not ``PR_SET_PDEATHSIG``: it fires on the death of the parent *thread* (a search starts its
trials from worker threads), it reaches only the process that set it (not the real SLM-Lab's own
children), and each process in the chain would have to set it. The keeper needs nothing from the
processes it guards. What it cannot reach is a process that leaves the group (``setsid``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from slm_bench.runners.signal_handlers import handling

# The keeper ignores what a stop, a time limit or a closed terminal sends to the whole group:
# dead, it would leave the group unowned, and a member that survives the signal would outlive
# the job. So only the pipe's end (or SIGKILL) ends it. `read` returns at end of file, i.e. once
# no process holds the pipe's write end; `kill 0` is the caller's whole process group.
KEEPER_WAIT = "trap '' INT TERM HUP; read _;"
KEEPER = ["/bin/sh", "-c", f"{KEEPER_WAIT} kill -KILL 0"]
# In the environment of every process an owned group starts (and so of its descendants): the
# group's id. It marks a process of that group only: one that left it has another group id.
OWNED_GROUP_ENV = "SLM_BENCH_OWNED_GROUP"


def keeper_argv(on_close: list[str] | None = None) -> list[str]:
    """The keeper's command: :data:`KEEPER`, or with ``on_close`` run to its end first (its
    arguments passed as such, never through the shell, with the signals the keeper ignores back
    to their defaults), before the group is killed. That is for what left the group and only
    its starter can find, e.g. the processes of a daemon's jobs in sessions of their own."""
    if not on_close:
        return KEEPER
    script = f'{KEEPER_WAIT} (trap - INT TERM HUP; exec "$@"); kill -KILL 0'
    return ["/bin/sh", "-c", script, "keeper", *on_close]


@dataclass
class OwnedGroup:
    """The started process and the id of the group it shares with its keeper."""

    process: subprocess.Popen
    pgid: int

    def kill(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)


@contextlib.contextmanager
def owned_group(
    argv: list[str], cwd: Path, *, on_close: list[str] | None = None, **popen_args: Any
) -> Iterator[OwnedGroup]:
    """Start ``argv`` in a new process group that dies with this process (see the module doc);
    ``on_close``: a command the keeper runs first (:func:`keeper_argv`).

    The keeper starts first and leads the group, so a job killed between the two starts leaves
    nothing: the keeper kills its group, and the runner can no longer join it. The group stays in
    this session (a process can only join a group of its own session), as a background group
    that a terminal's Ctrl-C does not reach: the job stops it (see ``stop_signals``).
    """
    read_end, write_end = os.pipe()  # not inheritable: only this process holds the write end
    try:
        keeper = subprocess.Popen(
            keeper_argv(on_close),
            cwd=cwd,
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    group = None
    env = popen_args.pop("env", None)
    env = {**(os.environ if env is None else env), OWNED_GROUP_ENV: str(keeper.pid)}
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, process_group=keeper.pid, env=env, **popen_args
        )
        group = OwnedGroup(process, keeper.pid)
        yield group
    finally:
        os.close(write_end)  # the keeper now kills whatever is left of the group
        keeper.wait()
        if group is not None and group.process.poll() is None:
            group.process.wait()


def in_owned_group() -> bool:
    """Whether this process runs in a group that ``owned_group`` started."""
    return os.environ.get(OWNED_GROUP_ENV) == str(os.getpgrp())


def run_owned(argv: list[str], cwd: Path, relay: tuple[int, ...]) -> int:
    """``argv`` run to its end in a group this process owns (``owned_group``): it and all it
    starts die with this process, SIGKILL included. Each signal of ``relay`` this process gets
    goes on to ``argv``'s process alone (a terminal's Ctrl-C or hangup does not reach its
    background group); one this process ignores stays ignored, and so in ``argv``, which
    inherits that. Returns its exit status, 128+N if signal N ended it, as a shell reports."""
    process: subprocess.Popen | None = None

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        if process is None:  # not started yet: leaving ``owned_group`` ends what has
            raise SystemExit(128 + signum)
        process.send_signal(signum)

    with handling(relay, pass_on), owned_group(argv, cwd) as group:
        process = group.process
        code = process.wait()
    return code if code >= 0 else 128 - code


def proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, process group, start time in clock ticks since boot) of ``pid``, from
    /proc; None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return int(fields[1]), int(fields[2]), int(fields[19])
