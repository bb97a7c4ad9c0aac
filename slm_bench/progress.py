"""How far along a run is: frame N of max_frame, session k of n, and an ETA.

``progress_line`` is a pure function the runners' progress writers call with what they know;
``ProgressTracker`` keeps each session's latest frame and estimates the time left from the frames
done so far; ``read_progress`` recovers the same from a run's log so far (for ``status``).

The ETA assumes the sessions still to finish train at the rate measured so far over all
sessions (they run in parallel, up to the job's threads), so it is honest early in a run only to
within the noise of start-up; it says "?" until any frames are done.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slm_bench.logs import strip_ansi


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
    """Time left at the rate so far; None before the first frames."""
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
    eta_s: float | None,
    total_reward_ma: float | None = None,
    fps: float | None = None,
) -> str:
    """``[CartPole-v1/ppo] session 2/4 | frame 12000/200000 (6%) | total_reward_ma 58.09 |
    ETA 4m10s``; ``session`` is 0-based as in SLM-Lab's logs and shown 1-based."""
    percent = 100.0 * frame / max_frame if max_frame else 0.0
    parts = [
        f"[{cell}] session {session + 1}/{n_sessions}",
        f"frame {int(frame)}/{int(max_frame)} ({percent:.0f}%)",
    ]
    if total_reward_ma is not None and math.isfinite(total_reward_ma):
        parts.append(f"total_reward_ma {total_reward_ma:.2f}")
    if fps is not None and math.isfinite(fps):
        parts.append(f"fps {fps:.0f}")
    parts.append(f"ETA {human_duration(eta_s)}")
    return " | ".join(parts)


@dataclass
class ProgressTracker:
    """Each session's latest frame; the whole run's ETA from the frames done so far.

    ``started`` is when the run started (``clock()`` time); restarts of a remote run may pass the
    time its current attempt started.
    """

    cell: str
    n_sessions: int
    max_frame: float
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    frames: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    @property
    def frames_done(self) -> float:
        return sum(min(f, self.max_frame) for f in self.frames.values())

    def eta(self) -> float | None:
        total = self.n_sessions * self.max_frame
        return eta_seconds(self.frames_done, total, self.clock() - self.started)

    def update(
        self,
        session: int,
        frame: float,
        total_reward_ma: float | None = None,
        fps: float | None = None,
    ) -> str:
        """Record session ``session`` at ``frame`` and return its progress line."""
        self.frames[session] = max(frame, self.frames.get(session, 0.0))
        return progress_line(
            self.cell,
            session,
            self.n_sessions,
            frame,
            self.max_frame,
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
        """The progress line of the furthest-behind session, with the whole run's ETA (for
        ``snakemake status``: ``elapsed_s`` since the run started)."""
        total = n_sessions * max_frame
        done = sum(min(f, max_frame) for f in self.frames.values())
        if not self.frames:
            return f"[{cell}] session 0/{n_sessions} | frame 0/{int(max_frame)} (0%) | ETA ?"
        session = min(self.frames, key=lambda s: self.frames[s])
        return progress_line(
            cell,
            session,
            n_sessions,
            self.frames[session],
            max_frame,
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
