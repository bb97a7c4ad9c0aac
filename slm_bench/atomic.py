"""Atomic file and folder writes: a reader sees the old content or the new, never half of it.

Temp files and folders are created with mode 0666 / 0777 and left to the umask, as ``open()``
and ``mkdir`` do: ``tempfile.mkstemp``/``mkdtemp`` would make every output private (0600/0700)
whatever the user's umask.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FILE_MODE = 0o666
DIR_MODE = 0o777
_ATTEMPTS = 100


_HOST = socket.gethostname()


def _temp_name(final: Path, suffix: str) -> Path:
    """A hidden name beside ``final`` that a glob for ``final``'s pattern does not match.

    It carries the writer's pid and host, so a later writer can tell a temp left by a killed
    process (removed) from one another process is still writing (kept)."""
    return final.with_name(f".{final.name}.{os.getpid()}@{_HOST}.{secrets.token_hex(4)}{suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:  # a killed process nobody has reaped yet (a container's pid 1 may never) is dead
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def remove_dead_temps(final: str | os.PathLike) -> list[Path]:
    """Remove the temps beside ``final`` whose writer, on this host, is no longer running.

    A SIGKILL (or a lost machine) mid-write leaves its temp file or ``.partial`` folder behind;
    nothing reads those names, but they hold disk space and look like data in a store. Temps of
    a live process, or written on another host sharing the folder, are left alone."""
    final = Path(final)
    pattern = re.compile(
        rf"\.{re.escape(final.name)}\.(\d+)@(.+)\.[0-9a-f]{{8}}\.(?:tmp|partial)\Z"
    )
    removed: list[Path] = []
    if not final.parent.is_dir():
        return removed
    for entry in final.parent.iterdir():
        match = pattern.match(entry.name)
        if not match or match[2] != _HOST or _pid_alive(int(match[1])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def require_writable(folder: str | os.PathLike, why: str) -> None:
    """One BenchError line when ``folder`` is on a read-only file system or not writable by
    this user (``why``: what needs it). A full disk is left to the job that meets it."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        reason = "Read-only file system"
    elif not os.access(folder, os.W_OK):
        reason = "Permission denied"
    else:
        return
    from slm_bench.errors import BenchError

    raise BenchError(f"{folder}: {reason}: {why} (nothing was run)")


def _create_temp_file(final: Path) -> tuple[int, Path]:
    remove_dead_temps(final)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = _temp_name(final, ".tmp")
        try:
            return os.open(tmp, flags, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{final}: no free temp name beside it")


def _create_temp_dir(final: Path) -> Path:
    remove_dead_temps(final)
    for _ in range(_ATTEMPTS):
        tmp = _temp_name(final, ".partial")
        try:
            tmp.mkdir(DIR_MODE)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{final}: no free temp name beside it")


@contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Yield a handle on a temp file beside ``path``; on success it is synced and renamed.

    ``mode`` is ``"w"`` (UTF-8 text, newlines as written) or ``"wb"``. On any error the temp
    file is removed and ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic: mode {mode!r}: expected 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_file(path)
    text = mode == "w"
    try:
        with os.fdopen(
            fd, mode, encoding="utf-8" if text else None, newline="" if text else None
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    with open_atomic(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON (NaN allowed, as SLM-Lab writes it) atomically."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def copy_file(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``source``'s bytes to ``dest`` atomically (a new file's mode, not the source's)."""
    with open(source, "rb") as reader, open_atomic(dest, "wb") as writer:
        shutil.copyfileobj(reader, writer)
    return Path(dest)


def _recover_old(final: Path, old: Path) -> None:
    """Finish a swap a kill interrupted: between its two renames ``final`` is missing and its
    last good content is in ``old`` (put back); after them only the cleanup was left."""
    if not old.is_dir():
        return
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(old, final)


@contextmanager
def staged_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside ``final``; on success it replaces ``final`` in one rename.

    On any error the temp folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old")
    _recover_old(final, old)
    tmp = _create_temp_dir(final)
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
