"""Atomic file and folder writes: a reader sees the old content or the new, never half of it.

Temp files and folders are created with mode 0666 / 0777 and left to the umask, as ``open()``
and ``mkdir`` do: ``tempfile.mkstemp``/``mkdtemp`` would make every output private (0600/0700)
whatever the user's umask.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FILE_MODE = 0o666
DIR_MODE = 0o777
_ATTEMPTS = 100


def _temp_name(final: Path, suffix: str) -> Path:
    """A hidden name beside ``final`` that a glob for ``final``'s pattern does not match."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}{suffix}")


def _create_temp_file(final: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = _temp_name(final, ".tmp")
        try:
            return os.open(tmp, flags, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{final}: no free temp name beside it")


def _create_temp_dir(final: Path) -> Path:
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
    text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
    try:
        with os.fdopen(fd, mode, **text) as handle:
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


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with open_atomic(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON (NaN allowed, as SLM-Lab writes it) atomically."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def copy_file(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``source``'s bytes to ``dest`` atomically (a new file's mode, not the source's)."""
    with open(source, "rb") as reader, open_atomic(dest, "wb") as writer:
        shutil.copyfileobj(reader, writer)
    return Path(dest)


@contextmanager
def staged_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside ``final``; on success it replaces ``final`` in one rename.

    On any error the temp folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_dir(final)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
