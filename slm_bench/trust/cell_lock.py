"""One writer per cell: a job that trains or searches a cell holds that job's lock in the cell.

Snakemake's own lock does not cover this: ``snakemake --unlock`` or a second instance with
``--nolock`` starts the same cell's job again while an earlier one still runs, and two runs
then write one work folder. So ``run_cell`` and ``search_cell`` hold ``.{job}.lock`` in the cell's
folder while they run: an exclusive ``flock`` (the kernel drops it when the holder dies, however)
and, inside, who holds it (pid, host, the process's start time, since when). A rerun that finds
the lock held refuses with one line naming the holder and how to stop it. A lock left by a dead
job is taken over silently: on this host its holder is checked alive (same boot, same pid and
start time, so a recycled pid does not count); a holder on another host cannot be checked
(``flock`` may not reach across hosts), so the rerun refuses and says how to clear it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.runners.process_group import proc_stat


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """The start time of ``pid``, or None if there is no such process."""
    stat = proc_stat(pid)
    return stat[2] if stat else None


@dataclass(frozen=True)
class Holder:
    """Who holds a cell's lock."""

    job: str
    pid: int
    host: str
    boot: str
    started: int | None
    since: str

    @classmethod
    def me(cls, job: str) -> Holder:
        pid = os.getpid()
        since = datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(job, pid, socket.gethostname(), _boot_id(), process_start(pid), since)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder recorded in ``text``; None for an empty or damaged record (a holder
        killed while writing it, which holds nothing)."""
        try:
            fields = json.loads(text)
            return cls(**{key: fields[key] for key in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError):
            return None

    def alive_here(self) -> bool:
        """On this host and this boot, the same process (pid and start time) still runs."""
        here = self.host == socket.gethostname() and self.boot == _boot_id()
        return here and self.started is not None and process_start(self.pid) == self.started

    def refusal(self, path: Path, checked: bool = True) -> str:
        who = f"{self.job} (pid {self.pid} on {self.host}, since {self.since})"
        if not checked:
            return (
                f"{path}: this cell is held by {who}, which cannot be checked from"
                f" {socket.gethostname()}; stop it there with `kill {self.pid}`, or if it is gone,"
                f" delete {path} and rerun"
            )
        return (
            f"{path}: this cell is being written by {who}; stop it with `kill {self.pid}` or"
            " wait for it, then rerun"
        )


def _read(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return Holder.parse(os.read(fd, 64 * 1024).decode(errors="replace"))


def _locked_file(path: Path) -> int:
    """An fd of ``path`` holding its flock; BenchError naming the holder if another has it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            if holder is None:  # its holder has not written itself in yet
                raise BenchError(f"{path}: this cell is being written by another job") from None
            raise BenchError(holder.refusal(path)) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # a holder removed the file as we opened it: lock the current one


@contextlib.contextmanager
def cell_writer(folder: Path, job: str) -> Iterator[None]:
    """Hold ``folder/.{job}.lock`` while the body runs (see the module doc)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{job}.lock"
    fd = _locked_file(path)
    try:
        holder = _read(fd)
        if holder is not None and holder.host != socket.gethostname():
            raise BenchError(holder.refusal(path, checked=False))
        if holder is not None and holder.pid != os.getpid() and holder.alive_here():
            raise BenchError(holder.refusal(path))  # alive without the flock: never two
        record = json.dumps(asdict(Holder.me(job))).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before the flock goes: a waiting rerun then locks a fresh file
        os.close(fd)
