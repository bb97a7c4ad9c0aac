"""How far along a cell's run is: the cell's share of its frames, the reporting session's frame,
and the cell's ETA.

One unit per line: the percentage and the ETA are both the *cell's* (every session's frames
together, ``n_sessions x max_frame``); the session's own frame is shown beside it as
``session k/n frame N/max_frame``.

``progress_line`` is a pure function the runners' progress writers call with what they know;
``ProgressTracker`` keeps each session's latest frame and estimates the time left from the rate
measured since the sessions started reporting; ``read_progress`` recovers the same from a run's
log so far (for ``status``).

No ETA until a rate is known: the first checkpoint of a session carries its start-up (imports,
env creation) and says nothing about the rate, so the ETA appears once a session has reported
twice, and is the frames left at the rate of the frames gained since each session's first
report.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slm_bench.formats.logs import strip_ansi


def human_duration(seconds: float | None) -> str:
    """``45s``, ``4m10s``, ``2h05m``, ``1d03h``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def eta_seconds(frames_done: float, frames_total: float, elapsed_s: float) -> float | None:
    """Time left at the rate ``frames_done / elapsed_s``; None while no rate is known."""
    if frames_done <= 0 or elapsed_s <= 0:
        return None
    remaining = max(frames_total - frames_done, 0.0)
    return remaining * elapsed_s / frames_done


def progress_line(
    cell: str,
    session: int,
    n_sessions: int,
    frame: float,
    max_frame: float,
    frames_done: float,
    eta_s: float | None,
    total_reward_ma: float | None = None,
    fps: float | None = None,
) -> str:
    """``[CartPole-v1/ppo] cell 30% (48000/160000 frames) | session 2/4 frame 12000/40000 |
    total_reward_ma 58.09 | fps 1111 | cell ETA 4m10s``.

    The percentage and ETA are the cell's; ``session`` is 0-based as in SLM-Lab's logs and shown
    1-based. The ETA is left out while unknown, and ``fps`` while SLM-Lab reports 0 (its first
    checkpoint).
    """
    total = n_sessions * max_frame
    percent = 100.0 * frames_done / total if total else 0.0
    parts = [
        f"[{cell}] cell {percent:.0f}% ({int(frames_done)}/{int(total)} frames)",
        f"session {session + 1}/{n_sessions} frame {int(frame)}/{int(max_frame)}",
    ]
    if total_reward_ma is not None and math.isfinite(total_reward_ma):
        parts.append(f"total_reward_ma {total_reward_ma:.2f}")
    if fps is not None and math.isfinite(fps) and fps > 0:
        parts.append(f"fps {fps:.0f}")
    if eta_s is not None:
        parts.append(f"cell ETA {human_duration(eta_s)}")
    return " | ".join(parts)


@dataclass
class ProgressTracker:
    """Each session's latest frame; the cell's ETA from the rate measured since the sessions
    started reporting (start-up left out)."""

    cell: str
    n_sessions: int
    max_frame: float
    clock: Callable[[], float] = time.monotonic
    frames: dict[int, float] = field(default_factory=dict)
    first: dict[int, float] = field(default_factory=dict)  # each session's first frame
    first_at: float | None = None  # when the first session first reported

    @property
    def frames_done(self) -> float:
        return sum(min(f, self.max_frame) for f in self.frames.values())

    def eta(self) -> float | None:
        """Frames left at the rate since the first report; None until frames were gained."""
        if self.first_at is None:
            return None
        gained = sum(min(self.frames[s], self.max_frame) - self.first[s] for s in self.frames)
        elapsed = self.clock() - self.first_at
        if gained <= 0 or elapsed <= 0:
            return None
        remaining = max(self.n_sessions * self.max_frame - self.frames_done, 0.0)
        return remaining * elapsed / gained

    def update(
        self,
        session: int,
        frame: float,
        total_reward_ma: float | None = None,
        fps: float | None = None,
    ) -> str:
        """Record session ``session`` at ``frame`` and return its progress line."""
        if self.first_at is None:
            self.first_at = self.clock()
        self.first.setdefault(session, min(frame, self.max_frame))
        self.frames[session] = max(frame, self.frames.get(session, 0.0))
        return progress_line(
            self.cell,
            session,
            self.n_sessions,
            frame,
            self.max_frame,
            self.frames_done,
            self.eta(),
            total_reward_ma,
            fps,
        )


# -- from a log -------------------------------------------------------------------------------

_SESSION = re.compile(r"(?:Trial (\d+) )?session (\d+) \S+ \[(?:train|eval)\]")
RECORD = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \|")  # a new log record
_FIELD = re.compile(r"\b(total_reward_ma|frame|fps):(\S+)")


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class SummaryParser:
    """SLM-Lab's checkpoint summaries, fed one log line at a time.

    A summary is a record ``Trial 0 session 1 NAME [train]`` followed by lines holding
    ``total_reward_ma:..``, ``fps:..`` and ``frame:..``; ``feed`` returns ``(session, fields)``
    once the summary's ``frame`` is read, else None. Any other record (e.g. ``trial_metrics``)
    ends a summary, so its fields are never taken for a session's.
    """

    def __init__(self) -> None:
        self.session: int | None = None
        self.trial = 0  # of the last summary (a search's trials are told apart by it)
        self.fields: dict[str, float] = {}

    def feed(self, line: str) -> tuple[int, dict[str, float]] | None:
        line = strip_ansi(line)
        if match := _SESSION.search(line):
            self.session, self.fields = int(match.group(2)), {}
            self.trial = int(match.group(1) or 0)
        elif RECORD.match(line):
            self.session = None
        if self.session is None:
            return None
        for key, value in _FIELD.findall(line):
            number = _float(value)
            if number is not None:
                self.fields[key] = number
        if "frame" not in self.fields:
            return None
        done, self.session = (self.session, self.fields), None
        return done


class ProgressFeed:
    """What a runner's progress writer needs: feed it every log line; it returns a progress line
    (at most one per ``every_s`` seconds) with frame N of max_frame, session k of n and the ETA.

    ``ProcessRunner`` would use it in place of its own summary parsing::

        feed = ProgressFeed(request.cell, n_sessions, max_frame)
        for raw in proc.stdout:
            if line := feed.feed(raw.decode(errors="replace")):
                write_line(line)  # slm_bench.terminal: one write per line
    """

    def __init__(
        self,
        cell: str,
        n_sessions: int,
        max_frame: float,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.parser = SummaryParser()
        self.tracker = ProgressTracker(cell, n_sessions, max_frame, clock=clock)
        self.every_s = every_s
        self.clock = clock
        self.last_echo: float | None = None

    def feed(self, line: str) -> str | None:
        summary = self.parser.feed(line)
        if summary is None:
            return None
        session, fields = summary
        text = self.tracker.update(
            session, fields["frame"], fields.get("total_reward_ma"), fields.get("fps")
        )
        now = self.clock()
        if self.last_echo is not None and now - self.last_echo < self.every_s:
            return None
        self.last_echo = now
        return text


@dataclass(frozen=True)
class LogProgress:
    """The latest checkpoint of every session in a run's log so far."""

    frames: dict[int, float]
    total_reward_ma: dict[int, float]

    def line(self, cell: str, n_sessions: int, max_frame: float, elapsed_s: float) -> str:
        """The progress line of the furthest-behind session, with the cell's share and ETA
        (for ``snakemake status``: ``elapsed_s`` from the log's first record to its last)."""
        total = n_sessions * max_frame
        done = sum(min(f, max_frame) for f in self.frames.values())
        if not self.frames:
            return f"[{cell}] cell 0% (0/{int(total)} frames) | no checkpoint yet"
        session = min(self.frames, key=lambda s: self.frames[s])
        return progress_line(
            cell,
            session,
            n_sessions,
            self.frames[session],
            max_frame,
            done,
            eta_seconds(done, total, elapsed_s),
            self.total_reward_ma.get(session),
        )


def read_progress(log_path: str | Path, tail_bytes: int = 1 << 20) -> LogProgress:
    """Each session's latest frame and MA from the last ``tail_bytes`` of an SLM-Lab log (a
    running cell's ``train.log.partial``, or a remote run's fetched log)."""
    path = Path(log_path)
    with open(path, "rb") as handle:
        handle.seek(max(path.stat().st_size - tail_bytes, 0))
        text = handle.read().decode(errors="replace")
    parser = SummaryParser()
    frames: dict[int, float] = {}
    mas: dict[int, float] = {}
    for line in text.splitlines():
        summary = parser.feed(line)
        if summary is None:
            continue
        session, fields = summary
        frames[session] = max(fields["frame"], frames.get(session, 0.0))
        if "total_reward_ma" in fields:
            mas[session] = fields["total_reward_ma"]
    return LogProgress(frames, mas)
