"""SLM-Lab's console lines from the embedded runner: checkpoint summaries, log records from the
session processes, and the console that prints them and keeps each log file's lines."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TextIO

from slm_bench.logs import console_line


def _format_items(row: Mapping[str, float]) -> list[str]:
    """SLM-Lab's util.format_metrics: frame %.2e, returns %.2f, other floats 4 significant."""
    items = []
    for key, value in row.items():
        value = float(value)
        if math.isnan(value):
            items.append(f"{key}:nan")
        elif key == "frame":
            items.append(f"{key}:{value:.2e}")
        elif key in ("total_reward", "total_reward_ma"):
            items.append(f"{key}:{value:.2f}")
        elif not value.is_integer():
            items.append(f"{key}:{value:.4g}")
        else:
            items.append(f"{key}:{value:g}")
    return items


def summary_message(prefix: str, row: Mapping[str, float]) -> str:
    """SLM-Lab's checkpoint summary: ``{prefix} [train]`` then the row, four items a line."""
    items = _format_items(row)
    width = max(len(item) for item in items)
    lines = [f"{prefix} [train]"]
    for i in range(0, len(items), 4):
        chunk = items[i : i + 4]
        lines.append(
            "  ".join(f"{it:<{width}}" if j < len(chunk) - 1 else it for j, it in enumerate(chunk))
        )
    return "\n".join(lines)


# A log record travelling from a session to the console: (session, when, level, module, function,
# message, pid); session is None for trial-level lines.
LogRecord = tuple[int | None, datetime, str, str, str, str, int]
Reporter = Callable[[LogRecord], None]


def log_record(
    session: int | None, module: str, function: str, message: str, level: str = "INFO"
) -> LogRecord:
    """A record stamped now, from this process."""
    return (session, datetime.now(), level, module, function, message, os.getpid())


class Console:
    """Prints console lines to the stream (coloured, as loguru does) and keeps the plain lines
    per log file: the trial log and one log per session."""

    def __init__(self, stream: TextIO, n_sessions: int):
        self.stream = stream
        self.trial: list[str] = []
        self.sessions: list[list[str]] = [[] for _ in range(n_sessions)]
        self.done: set[int] = set()

    def __call__(self, record: LogRecord, keep: bool = True, show: bool = True) -> None:
        session, when, level, module, function, message, pid = record
        if show:
            self.stream.write(console_line(level, module, function, message, when, pid) + "\n")
            self.stream.flush()
        if keep:
            plain = console_line(level, module, function, message, when, pid, color=False)
            (self.trial if session is None else self.sessions[session]).append(plain)
        if session is not None and message == f"Session {session} done":
            self.done.add(session)

    def log(
        self,
        message: str,
        module: str = "control",
        function: str = "run",
        level: str = "INFO",
        keep: bool = True,
        show: bool = True,
    ) -> None:
        self(log_record(None, module, function, message, level), keep=keep, show=show)
