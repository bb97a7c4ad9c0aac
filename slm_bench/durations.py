"""Durations as the config and dstack write them: ``45s``, ``90m``, ``6h``, ``2d``, ``1w``; and
the moment a record is written (``now_iso``), as every record and marker of the pipeline has it.

One parser for every duration in the project. A bare number is seconds, as in dstack's own task
files. Values are bounded (more than zero, at most ``MAX_SECONDS``) because an out-of-range limit
either fails every run (0, negative) or overflows the timer that enforces it (huge, inf).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from slm_bench.errors import BenchError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 30 * 86400  # a month: longer than any benchmark run SLM-Lab documents
_DURATION = re.compile(r"^(\d+(?:\.\d+)?) *([smhdw]?)$")


def parse_duration(value: object, source: str, max_s: float = MAX_SECONDS) -> float:
    """Seconds in ``value``; ``source`` names the file and field for the one-line error."""
    expected = "expected a duration such as 45s, 90m, 6h or 2d"
    if isinstance(value, bool):
        raise BenchError(f"{source}: {value!r} is not a duration ({expected})")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise BenchError(f"{source}: {value!r} is not a duration ({expected})")
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise BenchError(f"{source}: {value!r} is not a duration ({expected})")
        seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"]
    if not 0 < seconds <= max_s:
        limit = format_duration(int(max_s))
        raise BenchError(
            f"{source}: {value!r} is out of range (expected more than 0s, at most {limit})"
        )
    return seconds


def now_iso() -> str:
    """The current UTC time as the pipeline writes it in every record and marker."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def format_duration(seconds: int) -> str:
    """The shortest exact form dstack accepts: ``6h``, ``90m``, ``45s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
