"""A tree built once per test run and shared, read-only, by every test that needs it, also when
the suite runs on several pytest-xdist workers (``make test``): a process-level cache would
build it once on every worker."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def built_once(
    tmp_path_factory: pytest.TempPathFactory, key: str, build: Callable[[Path], None]
) -> Path:
    """The folder ``build`` filled for ``key`` in this test run. The first caller builds it under
    a lock in the run's temp folder (shared by the workers); the others wait for it and reuse it.
    A build that raised is tried again by the next caller, as a serial run would."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # each worker has its own basetemp under the run's
    folder, done = base / f"built-{key}", base / f"built-{key}.done"
    with (base / f"built-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
