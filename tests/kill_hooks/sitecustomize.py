"""Test-only: hold a real write at a chosen point so a test can SIGKILL it there.

Loaded by every Python process of a Snakemake run whose ``PYTHONPATH`` starts with this folder.
``SLM_BENCH_PAUSE`` selects the point, ``SLM_BENCH_PAUSED`` is the file created on arrival:

- ``fsync:NAME``: a file whose name contains NAME is fully written to its temp file, not yet
  renamed into place (``slm_bench.atomic.write_text`` fsyncs, then renames);
- ``copy:N``: the Nth file copied into a ``.partial`` folder (a store upload in progress);
- ``popen-cwd:NAME``: a process about to be started in a folder named NAME (a search's
  ``trial_1``: trial 0 is done, trial 1 not started);
- ``mkdtemp:PREFIX``: a temp folder named PREFIX... just made (a search's scratch folder: the
  search has started, no trial yet).

Nothing else changes: the code under test runs as it does for users.
"""

import os
import shutil
import sys
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

elif _POINT.startswith(("popen-cwd:", "mkdtemp:")):
    _event, _, _name = _POINT.partition(":")

    def _audit(event, args):
        # subprocess.Popen: (executable, args, cwd, env); tempfile.mkdtemp: (path,)
        if _event == "popen-cwd" and event == "subprocess.Popen":
            arrived = args[2] is not None and os.path.basename(os.fspath(args[2])) == _name
        else:
            arrived = event == "tempfile.mkdtemp" and os.path.basename(args[0]).startswith(_name)
        if arrived:
            _hold()

    sys.addaudithook(_audit)
