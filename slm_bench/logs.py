"""SLM-Lab log lines: writing them as SLM-Lab does, and reading a run's folder and score from a log.

Console format (loguru): ``{YYYY-MM-DD HH:mm:ss} | {LEVEL} | PID:{pid} | {module}:{function} |
{message}``, coloured with ANSI codes even when not on a terminal.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime

from slm_bench.metrics import SCALAR_KEYS

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
        f"✅ Upload complete: https://huggingface.co/datasets/{repo}/tree/main/data/{folder}",
    )
