"""Lines for the console that jobs running side by side share.

With ``PYTHONUNBUFFERED`` set (as in many CI and container images) stderr is write-through, and
``print(line, file=sys.stderr)`` sends the text and its newline in two writes: two jobs' lines
then interleave mid-line (``cell A: ...cell B: ...`` and two bare newlines). A line sent in one
``write`` reaches a pipe whole (below ``PIPE_BUF``).
"""

from __future__ import annotations

import sys
from typing import TextIO


def write_line(line: str, stream: TextIO | None = None) -> None:
    """Write ``line`` and its newline in one write, then flush (stderr by default)."""
    stream = stream or sys.stderr
    stream.write(line + "\n")
    stream.flush()
