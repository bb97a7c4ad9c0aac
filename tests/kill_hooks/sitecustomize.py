"""Test-only: hold a real write at a chosen point so a test can SIGKILL it there.

Loaded by every Python process of a Snakemake run whose ``PYTHONPATH`` starts with this folder.
``SLM_BENCH_PAUSE`` selects the point, ``SLM_BENCH_PAUSED`` is the file created on arrival:

- ``fsync:NAME``: a file whose name contains NAME is fully written to its temp file, not yet
  renamed into place (``slm_bench.atomic.write_text`` fsyncs, then renames);
- ``copy:N``: the Nth file copied into a ``.partial`` folder (a store upload in progress).

Nothing else changes: the code under test runs as it does for users.
"""

import os
import shutil
import time
from pathlib import Path

_POINT = os.environ.get("SLM_BENCH_PAUSE", "")
_FLAG = os.environ.get("SLM_BENCH_PAUSED", "")


def _hold() -> None:
    Path(_FLAG).write_text(str(os.getpid()))
    while True:
        time.sleep(60)


if _POINT.startswith("fsync:"):
    _name = _POINT.removeprefix("fsync:")
    _fsync = os.fsync

    def _paused_fsync(fd):
        _fsync(fd)
        if _name in os.readlink(f"/proc/self/fd/{fd}"):
            _hold()

    os.fsync = _paused_fsync

elif _POINT.startswith("copy:"):
    _after = int(_POINT.removeprefix("copy:"))
    _copyfile = shutil.copyfile
    _copied = []

    def _paused_copyfile(src, dst, *args, **kwargs):
        result = _copyfile(src, dst, *args, **kwargs)
        if ".partial" in str(dst):
            _copied.append(dst)
            if len(_copied) >= _after:
                _hold()
        return result

    shutil.copyfile = _paused_copyfile
