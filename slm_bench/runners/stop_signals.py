"""A signal to Snakemake alone stops the running jobs as Ctrl-C in a terminal does.

Ctrl-C sends SIGINT to the terminal's whole foreground group: Snakemake and every job process,
each of which stops and says so. ``kill PID``, ``timeout``, systemd or a batch system signal only
Snakemake, and Snakemake 9 does not pass it on: on SIGTERM its scheduler "will exit after
finishing currently running jobs", on SIGINT it cancels its executor, which for local jobs only
waits for them. A cell would then go on training, or waiting on a remote run, for hours.

``forward_stop_signals`` (the Snakefile's ``onstart``, so it runs in the Snakemake process after
its scheduler set its own SIGTERM handler) wraps Snakemake's handlers: on SIGINT or SIGTERM it
sends SIGINT to every process of Snakemake's jobs in its own process group (the job shells and
scripts; a runner's own group is its job's to stop), then lets Snakemake handle it as a SIGINT
(for SIGTERM too: Snakemake's own SIGTERM handling waits for the running jobs, which on a
cluster are Slurm jobs that would train on; its SIGINT handling cancels them). A job
started in the moment after is signalled too, each job once. After a real Ctrl-C a job thus
gets SIGINT twice: ``stop_on_signals`` makes a job's stop run once, later signals ignored.

``slm-bench run`` itself ends with 128+signal on any of ``RUN_STOP_SIGNALS`` (``cli.main``), and
``stop_first`` lets a search stop the trial processes it started before that exit, which would
otherwise wait for them to finish training.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

from slm_bench.runners.process_group import proc_stat
from slm_bench.runners.signal_handlers import handling

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# What stops `slm-bench run` sent to it alone: a stop, a time limit, Ctrl-C, a closed terminal.
RUN_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FORWARD_EVERY_S = 0.2


def job_trees(root: int, pgid: int) -> dict[tuple[int, int], list[int]]:
    """Each child of ``root`` (pid, start time) -> its own and its descendants' pids that are in
    process group ``pgid``: one entry per job Snakemake started."""
    children: dict[int, list[tuple[int, int, int]]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1], stat[2]))
    trees: dict[tuple[int, int], list[int]] = {}
    for job, job_group, started in children.get(root, []):
        stack, members = [(job, job_group)], []
        while stack:
            pid, group = stack.pop()
            if group == pgid:
                members.append(pid)
            stack.extend((child, child_group) for child, child_group, _ in children.get(pid, []))
        trees[(job, started)] = members
    return trees


class _Forwarder:
    """SIGINT to every process of each of Snakemake's jobs, once per job, from the first stop
    signal on. Processes a job starts after that (e.g. a dstack runner asking the server what it
    leaves running) are its own business, as after a Ctrl-C."""

    def __init__(self) -> None:
        self.signalled: set[tuple[int, int]] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def forward(self) -> None:
        with self.lock:
            for job, members in job_trees(os.getpid(), os.getpgrp()).items():
                if job in self.signalled:
                    continue
                self.signalled.add(job)
                for pid in members:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGINT)

    def start(self) -> None:
        self.forward()
        if self.thread is None:  # jobs starting in the moment after the signal stop too
            self.thread = threading.Thread(target=self._keep_forwarding, daemon=True)
            self.thread.start()

    def _keep_forwarding(self) -> None:
        while True:
            threading.Event().wait(FORWARD_EVERY_S)
            self.forward()


def forward_stop_signals() -> None:
    """In the Snakemake process: pass SIGINT and SIGTERM on to the running jobs, then let
    Snakemake's own handler run (see the module doc)."""
    forwarder = _Forwarder()
    # SIGTERM gets Snakemake's SIGINT handling, as after a Ctrl-C: its own SIGTERM handling waits
    # for the running jobs, which on a cluster (profiles/slurm) would train on for hours; its
    # SIGINT handling cancels them through the executor (scancel).
    on_interrupt = signal.getsignal(signal.SIGINT)

    def handler(_signum: int, frame: FrameType | None) -> None:
        forwarder.start()
        _hand_on(on_interrupt, signal.SIGINT, frame)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def _hand_on(previous: object, signum: int, frame: FrameType | None) -> None:
    """``signum`` to the handler it had before ours: called, or the default action taken."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


@contextmanager
def stop_first(stop: Callable[[], None], signums: tuple = RUN_STOP_SIGNALS) -> Iterator[None]:
    """Inside: a signal of ``signums`` calls ``stop()`` (once; a later signal skips it), then
    the handler the signal had before (``slm-bench``'s: exit with 128+signal). For processes a
    signal to this one alone does not reach and that its way out would wait for. A signal this
    process ignores stays ignored; off the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopped = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            stop()
        _hand_on(previous[signum], signum, frame)

    with handling(signums, handler) as previous:
        yield


@contextmanager
def stop_on_signals(on_stop: Callable[[int], None]) -> Iterator[None]:
    """Inside: the first SIGINT or SIGTERM calls ``on_stop(signum)`` (which ends the job, e.g.
    by raising); every later one is ignored, so a stop is never interrupted halfway. Outside
    again (no stop), the previous handlers are back. Off the main thread (where Python cannot
    handle signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        on_stop(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        if not stopping:
            for signum, old in previous.items():
                signal.signal(signum, old)
