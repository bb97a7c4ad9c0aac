"""SLM-Lab's console lines from the embedded runner: checkpoint summaries, log records from the
session processes, and the console that prints them and keeps each log file's lines."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from slm_bench.formats.logs import console_line

# SLM-Lab's ``module:function`` for each kind of line it prints, so a log of the embedded runner
# greps like SLM-Lab's; the runner's own lines name its own modules.
RUN_SPEC = ("slm_lab.cli.main", "run_spec")  # the Running and Output lines
LOG_SUMMARY = ("slm_lab.agent", "log_summary")  # a checkpoint summary
LOGGER_INFO = ("slm_lab.lib.logger", "info")  # trial_metrics, Trial/Session N done


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
    """Prints console lines to the stream (coloured, as loguru does) and appends the plain lines
    to their log file as they come, as SLM-Lab's file sinks do: the trial's and each session's."""

    def __init__(
        self, stream: TextIO, trial_log: Path | None = None, session_logs: Sequence[Path] = ()
    ):
        self.stream = stream
        self.paths: dict[int | None, Path | None] = dict(enumerate(session_logs))
        self.paths[None] = trial_log
        self.files: dict[int | None, TextIO] = {}
        self.done: set[int] = set()

    def __call__(self, record: LogRecord, keep: bool = True, show: bool = True) -> None:
        session, when, level, module, function, message, pid = record
        if show:
            self.stream.write(console_line(level, module, function, message, when, pid) + "\n")
            self.stream.flush()
        path = self.paths.get(session)
        if keep and path is not None:
            if session not in self.files:
                self.files[session] = open(path, "a", encoding="utf-8")  # noqa: SIM115
            handle = self.files[session]
            handle.write(console_line(level, module, function, message, when, pid, color=False))
            handle.write("\n")
            handle.flush()
        if session is not None and message == f"Session {session} done":
            self.done.add(session)

    def log(
        self,
        message: str,
        module: str = LOGGER_INFO[0],
        function: str = LOGGER_INFO[1],
        level: str = "INFO",
        keep: bool = True,
        show: bool = True,
    ) -> None:
        self(log_record(None, module, function, message, level), keep=keep, show=show)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()
