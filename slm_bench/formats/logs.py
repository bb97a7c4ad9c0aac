"""SLM-Lab log lines: writing them as SLM-Lab does, and reading a run's folder and score from a log.

Console format (loguru): ``{YYYY-MM-DD HH:mm:ss} | {LEVEL} | PID:{pid} | {module}:{function} |
{message}``, coloured with ANSI codes even when not on a terminal.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from slm_bench.errors import BenchError
from slm_bench.formats.metrics import SCALAR_KEYS
from slm_bench.formats.naming import dataset_url

# loguru's colour markup, as ANSI codes: <green>, <cyan>, <level> (per-level colour), reset.
_RESET = "\x1b[0m"
_GREEN = "\x1b[32m"
_CYAN = "\x1b[36m"
_LEVEL_COLORS = {
    "TRACE": "\x1b[36m\x1b[1m",
    "DEBUG": "\x1b[34m\x1b[1m",
    "INFO": "\x1b[1m",
    "SUCCESS": "\x1b[32m\x1b[1m",
    "WARNING": "\x1b[33m\x1b[1m",
    "ERROR": "\x1b[31m\x1b[1m",
    "CRITICAL": "\x1b[41m\x1b[1m",
}

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# ---------------------------------------------------------------------------------------------
# Writers


def console_line(
    level: str,
    module: str,
    function: str,
    message: str,
    when: datetime | None = None,
    pid: int | None = None,
    color: bool = True,
) -> str:
    """One SLM-Lab console line (no trailing newline); ``color`` adds loguru's ANSI codes."""
    stamp = (when or datetime.now()).strftime(TIME_FORMAT)
    level = level.upper()
    pid = os.getpid() if pid is None else pid
    if not color:
        return f"{stamp} | {level} | PID:{pid} | {module}:{function} | {message}"
    level_color = _LEVEL_COLORS.get(level, "\x1b[1m")
    return (
        f"{_GREEN}{stamp}{_RESET} | "
        f"{level_color}{level}{_RESET} | "
        f"{_CYAN}PID:{pid}{_RESET} | "
        f"{_CYAN}{module}:{function}{_RESET} | "
        f"{level_color}{message}{_RESET}"
    )


def running_message(spec_file: str, spec_name: str, mode: str, n_sessions: int, output: str) -> str:
    """The start line; ``output`` is ``data/{folder}/{prefix}`` (``_t0`` is added for a trial)."""
    if mode == "search":
        return f"SLM-Lab: Running {spec_file} {spec_name} search | output: {output}"
    return (
        f"SLM-Lab: Running {spec_file} {spec_name} {mode} with {n_sessions} sessions"
        f" | output: {output}_t0"
    )


def _format_metric(key: str, value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "nan"
    if key == "frame":
        return f"{value:.2e}"
    if key == "total_reward_ma":
        return f"{value:.2f}"
    return f"{value:.4g}"


def trial_metrics_message(scalar: Mapping[str, float]) -> str:
    """``trial_metrics: frame:1.00e+07 | total_reward_ma:816.18 | ...`` in SCALAR_KEYS order."""
    parts = [f"{key}:{_format_metric(key, scalar[key])}" for key in SCALAR_KEYS if key in scalar]
    return "trial_metrics: " + " | ".join(parts)


def output_message(folder: str) -> str:
    """The line after the trial: ``Output: data/{folder}``."""
    return f"Output: data/{folder}"


def upload_messages(folder: str, repo: str) -> tuple[str, str]:
    """The upload start and success lines for ``data/{folder}`` going to HF dataset ``repo``."""
    return (
        f"Uploading data/{folder} to {repo}/data/{folder}...",
        f"✅ Upload complete: {dataset_url(repo, folder)}",
    )


# ---------------------------------------------------------------------------------------------
# Readers

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
# A console line starts with its timestamp (possibly behind a colour code); any other line
# continues the message of the line before it.
_LINE_START_RE = re.compile(rb"^(?:\x1b\[[0-9;]*m)*\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# `trial_metrics:` followed by a first `key:` - not a traceback quoting the logging call.
_TRIAL_METRICS_RE = re.compile(rb"trial_metrics:[ \t]*(?:\x1b\[[0-9;]*m)*[A-Za-z_]\w*:")
_TRIAL_METRICS_MARKER = b"trial_metrics:"
_TRIAL_METRICS_TEXT_RE = re.compile(r"trial_metrics:\s*(?=[A-Za-z_]\w*:)")
_METRIC_PAIR_RE = re.compile(r"^([A-Za-z_]\w*):(\S+)$")
_RUNNING_RE = re.compile(
    r"SLM-Lab: Running (?P<spec_file>\S+) (?P<spec_name>\S+) (?P<mode>\w+)"
    r"(?: with (?P<sessions>\d+) sessions)? \| output: (?:\S*/)?data/(?P<folder>[^/\s]+)/"
)
_OUTPUT_RE = re.compile(r"Output: (?:\S*/)?data/(?P<folder>[^/\s]+)")
_UPLOADING_RE = re.compile(r"Uploading (?:\S*/)?data/(?P<folder>[^/\s]+)")
_UPLOAD_TARGET_RE = re.compile(
    r"Uploading (?:\S*/)?data/[^/\s]+ to (?P<target>\S+?)(?:\.\.\.)?(?=\s|$)"
)

HEAD_BYTES = 512 * 1024  # where the Running line is looked for
TAIL_BYTES = 4 * 1024 * 1024  # the end window: last trial_metrics, Output and Uploading lines
BLOCK_BYTES = 8 * 1024 * 1024  # backward scan step when the end window holds no trial_metrics
# How far back from the end a trial_metrics line is looked for. SLM-Lab prints it once all
# sessions are done, followed by a few lines (Output, upload); a log with none in its last
# 64 MiB is from a run that did not finish, and a 1 GB killed run's log is not read whole.
SCAN_BYTES = 64 * 1024 * 1024
RECORD_BYTES = 64 * 1024  # at most this much of one (multi-line) message is read
MAX_CONTINUATION_LINES = 50


def strip_ansi(text: str) -> str:
    """``text`` without ANSI colour codes."""
    return ANSI_RE.sub("", text)


def _parse_metric_pairs(text: str) -> dict[str, float]:
    """``key:value | key:value`` -> dict; whitespace inside a part is dropped (wrapped lines)."""
    metrics: dict[str, float] = {}
    for part in text.split("|"):
        part = "".join(part.split())
        if not part:
            continue
        match = _METRIC_PAIR_RE.match(part)
        if not match:
            raise ValueError(f"expected key:value, got {part!r}")
        key, value = match.groups()
        try:
            metrics[key] = float(value)
        except ValueError:
            raise ValueError(f"{key}: expected a number, nan or inf, got {value!r}") from None
    return metrics


def parse_trial_metrics(line: str) -> dict[str, float]:
    """The metrics of a ``trial_metrics:`` console line or bare message (ANSI codes allowed)."""
    text = strip_ansi(line)
    match = _TRIAL_METRICS_TEXT_RE.search(text)
    if not match:
        shown = text.strip()[:200]
        raise BenchError(f"expected a 'trial_metrics: key:value | ...' line, got {shown!r}")
    try:
        return _parse_metric_pairs(text[match.end() :])
    except ValueError as error:
        raise BenchError(f"malformed trial_metrics line: {error}") from None


@dataclass
class RunLog:
    """What an SLM-Lab log says about its run (the last run, when a log holds several)."""

    data_folder: str | None = None
    mode: str | None = None  # the run's Running line mode ("train", "search", ...), or inferred
    spec_file: str | None = None
    spec_name: str | None = None
    trial_metrics: dict[str, float] | None = None  # the last trial_metrics line
    n_trial_metrics: int = 0  # trial_metrics lines in the window read
    running_modes: tuple[str, ...] = ()  # the mode of every Running line found, in log order
    uploaded_to: str | None = None  # ``{repo}/data/{folder}`` of the last Uploading line
    size: int = 0  # bytes in the log
    scanned_bytes: int = 0  # bytes at the end of the log searched for trial_metrics

    @property
    def is_search(self) -> bool:
        """A search run says so in its Running line; train runs are never called a search."""
        return "search" in self.running_modes

    @property
    def n_train_runs(self) -> int:
        return sum(mode == "train" for mode in self.running_modes)


def _trial_metrics_hits(buf: bytes) -> list[int]:
    """Offsets of the trial_metrics lines' markers in ``buf`` (bytes.find, then a regex check:
    far faster than a regex scan over megabytes)."""
    hits = []
    pos = buf.find(_TRIAL_METRICS_MARKER)
    while pos >= 0:
        if _TRIAL_METRICS_RE.match(buf, pos):
            hits.append(pos)
        pos = buf.find(_TRIAL_METRICS_MARKER, pos + 1)
    return hits


def _line_start(buf: bytes, pos: int) -> int:
    return buf.rfind(b"\n", 0, pos) + 1


def _record_lines(buf: bytes, pos: int) -> list[str]:
    """The physical line holding ``pos`` then its continuation lines, decoded, without ANSI/CR."""
    start = _line_start(buf, pos)
    lines: list[str] = []
    while start < len(buf) and len(lines) <= MAX_CONTINUATION_LINES:
        end = buf.find(b"\n", start)
        end = len(buf) if end < 0 else end
        raw = buf[start:end]
        if lines and (_LINE_START_RE.match(raw) or _trial_metrics_hits(raw)):
            break
        lines.append(strip_ansi(raw.decode("utf-8", "replace")).rstrip("\r"))
        start = end + 1
    return lines


def _last_match(buf: bytes, marker: bytes, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The last message in ``buf`` holding ``marker`` that ``pattern`` matches."""
    pos = len(buf)
    while (pos := buf.rfind(marker, 0, pos)) >= 0:
        match = pattern.search("".join(_record_lines(buf, pos)))
        if match:
            return match
    return None


def _trial_metrics_at(buf: bytes, pos: int, path: Path) -> dict[str, float]:
    """Parse the trial_metrics message at ``pos``.

    A message wrapped over several lines is joined line by line while the joined text still
    parses and scalar keys are missing, so raw output printed after the line is not taken in.
    """
    lines = _record_lines(buf, pos)
    text = ""
    best: dict[str, float] | None = None
    error: ValueError | None = None
    for line in lines:
        text += line
        match = _TRIAL_METRICS_TEXT_RE.search(text)
        try:
            metrics = _parse_metric_pairs(text[match.end() :]) if match else None
        except ValueError as bad:
            if best is not None:
                break
            error = error or bad
            continue
        best = metrics or best
        if best is not None and all(key in best for key in SCALAR_KEYS):
            break
    if best is None:
        raise BenchError(f"{path}: malformed trial_metrics line: {error}")
    return best


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _running_lines(buf: bytes, offset: int, end: int) -> dict[int, re.Match[str]]:
    """Every ``SLM-Lab: Running`` message starting in ``buf[:end]``, by its offset in the file."""
    found = {}
    pos = buf.find(b"SLM-Lab: Running", 0, end)
    while pos >= 0:
        match = _RUNNING_RE.search("".join(_record_lines(buf, pos)))
        if match:
            found[offset + pos] = match
        pos = buf.find(b"SLM-Lab: Running", pos + 1, end)
    return found


def _output_after(buf: bytes, pos: int) -> str | None:
    """The folder of the first ``Output: data/FOLDER`` message after ``pos`` (SLM-Lab prints it
    right after the trial's trial_metrics line)."""
    at = buf.find(b"Output: ", pos)
    while at >= 0:
        match = _OUTPUT_RE.search("".join(_record_lines(buf, at)))
        if match:
            return match["folder"]
        at = buf.find(b"Output: ", at + 1)
    return None


def read_run_log(path: str | os.PathLike) -> RunLog:
    """Read the run's folder, mode and last trial_metrics from an SLM-Lab log.

    Only the head (the Running line) and the end of the file are read, so a log of any size
    takes milliseconds; the file is scanned backwards only when its end holds no trial_metrics.
    When a log holds several runs, the folder is the one of the run the last trial_metrics line
    belongs to: the ``Output:`` line after it, else the last Running line before it.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise BenchError(f"{path}: cannot read log: {error.strerror or error}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        run = RunLog(size=size)

        head = _read_at(handle, 0, HEAD_BYTES + RECORD_BYTES)
        running = _running_lines(head, 0, min(HEAD_BYTES, len(head)))

        tail_start = max(0, size - TAIL_BYTES)
        tail = _read_at(handle, tail_start, size - tail_start)
        if tail_start > 0:  # drop the partial first line; the backward scan covers it
            cut = tail.find(b"\n") + 1
            tail, tail_start = tail[cut:], tail_start + cut
        running.update(_running_lines(tail, tail_start, len(tail)))
        hits = _trial_metrics_hits(tail)
        run.scanned_bytes = size - tail_start
        metrics_at, output = None, None
        if hits:
            run.n_trial_metrics = len(hits)
            run.trial_metrics = _trial_metrics_at(tail, hits[-1], path)
            metrics_at, output = tail_start + hits[-1], _output_after(tail, hits[-1])
        else:
            found = _scan_back_for_trial_metrics(
                handle, tail_start, max(0, size - SCAN_BYTES), path, run
            )
            if found is not None:
                metrics_at, record = found
                output = _output_after(record, 0)

        run.running_modes = tuple(running[at]["mode"] for at in sorted(running))
        before = [at for at in sorted(running) if metrics_at is None or at < metrics_at]
        if before:
            last = running[before[-1]]
            run.data_folder, run.mode = last["folder"], last["mode"]
            run.spec_file, run.spec_name = last["spec_file"], last["spec_name"]
        if output:
            run.data_folder = output
        if run.data_folder is None:
            match = _last_match(tail, b"Output: ", _OUTPUT_RE) or _last_match(
                tail, b"Uploading ", _UPLOADING_RE
            )
            run.data_folder = match["folder"] if match else None
        upload = _last_match(tail, b"Uploading ", _UPLOAD_TARGET_RE)
        run.uploaded_to = upload["target"] if upload else None

    if run.mode is None and run.n_trial_metrics == 1:
        run.mode = "train"
    return run


def _scan_back_for_trial_metrics(
    handle: BinaryIO, end: int, limit: int, path: Path, run: RunLog
) -> tuple[int, bytes] | None:
    """Find the last trial_metrics line in bytes ``limit..end``, reading backwards in blocks;
    returns its offset and the bytes read from there."""
    overlap = 256  # a marker cut by a block boundary is found in the next (earlier) block
    while end > limit:
        start = max(limit, end - BLOCK_BYTES)
        block = _read_at(handle, start, end - start + overlap)
        run.scanned_bytes = run.size - start
        hits = _trial_metrics_hits(block)
        if hits:
            line_at = start + _line_start(block, hits[-1])
            record = _read_at(handle, line_at, RECORD_BYTES)
            run.n_trial_metrics = len(hits)
            run.trial_metrics = _trial_metrics_at(record, 0, path)
            return line_at, record
        end = start
    return None


def read_score(path: str | os.PathLike) -> RunLog:
    """``read_run_log`` for a train run that finished: raises BenchError (naming the log) for a
    truncated or killed run, a search log, a log whose score cannot be tied to one train run, a
    non-finite score, or a log that names no data folder."""
    run = read_run_log(path)
    if run.trial_metrics is None:
        where = (
            "" if run.scanned_bytes >= run.size else f" in its last {run.scanned_bytes >> 20} MiB"
        )
        raise BenchError(
            f"{path}: no trial_metrics line{where}; "
            "the run was truncated or killed before its trial ended"
        )
    if run.is_search:
        raise BenchError(
            f"{path} is a search log (its Running line says search; "
            f"{run.n_trial_metrics} trial_metrics lines); only train runs enter the table"
        )
    if run.n_trial_metrics > max(1, run.n_train_runs):
        raise BenchError(
            f"{path}: {run.n_trial_metrics} trial_metrics lines but {run.n_train_runs} "
            "'SLM-Lab: Running ... train' line(s) found; cannot tell which run the score is from"
        )
    if run.data_folder is None:
        raise BenchError(
            f"{path}: no data folder (expected 'SLM-Lab: Running ... | output: data/FOLDER/...', "
            "'Output: data/FOLDER' or 'Uploading data/FOLDER' line)"
        )
    if "total_reward_ma" not in run.trial_metrics:
        raise BenchError(f"{path}: trial_metrics line has no total_reward_ma")
    score = run.trial_metrics["total_reward_ma"]
    if not math.isfinite(score):
        raise BenchError(
            f"{path}: trial_metrics total_reward_ma is {score}: expected a finite score"
        )
    return run
