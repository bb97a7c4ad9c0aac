"""Runners that start an SLM-Lab-compatible command on this machine.

Both the embedded runner (``slm-bench run``) and the real ``slm-lab run`` take the same arguments,
``run [-s key=value ...] [OPTIONS] -- SPEC_FILE SPEC_NAME MODE``, print SLM-Lab's log lines and
write ``data/FOLDER`` under their working directory; only the command and the directory differ.
The ``--`` makes a spec name or file that starts with ``-`` reach the command as a name (both
argparse and SLM-Lab's typer accept it).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from slm_bench.errors import BenchError
from slm_bench.formats.logs import read_run_log, strip_ansi
from slm_bench.runners import RunRequest, RunResult
from slm_bench.runners.process_group import OwnedGroup, owned_group
from slm_bench.runners.progress import ProgressFeed, SummaryParser
from slm_bench.runners.stop_signals import stop_on_signals
from slm_bench.terminal import write_line

PROGRESS_EVERY_S = 10.0  # echo at most one progress line per run this often
# The time-limit watchdog sleeps at most this long at a time: a single wait on a huge limit
# overflows the platform's lock timeout (OverflowError in the timer thread, limit not enforced).
WATCHDOG_STEP_S = 60.0


@dataclass
class ProcessRunner:
    name: str
    command: list[str]
    cwd: Path | None = None  # None: the request's workdir
    extra_args: list[str] = field(default_factory=list)
    install_hint: str = ""
    takes_seed: bool = False  # `slm-bench run --seed S`; `slm-lab run` draws its own seeds
    search_args: list[str] = field(default_factory=list)  # options of `search` mode only

    def argv(self, request: RunRequest, spec_file: str) -> list[str]:
        """``COMMAND [-s k=v ...] [OPTIONS] -- SPEC_FILE SPEC_NAME MODE``: options end at ``--``."""
        sets = [arg for key, value in request.sets.items() for arg in ("-s", f"{key}={value}")]
        options = list(self.extra_args)
        if self.takes_seed and request.seed is not None:
            options += ["--seed", str(request.seed)]
        if request.mode == "search":
            options += self.search_args
        positional = [spec_file, request.spec_name, request.mode]
        return [*self.command, *sets, *options, "--", *positional]

    def run(self, request: RunRequest) -> RunResult:
        limit = request.time_limit_s
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
            raise BenchError(f"{request.cell}: time_limit {limit!r}: expected more than 0 seconds")
        if not math.isfinite(limit):
            raise BenchError(f"{request.cell}: time_limit {limit!r}: expected a finite duration")
        cwd = Path(self.cwd or request.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        spec_file = request.spec_file if self.cwd else str(Path(request.spec_file).resolve())
        argv = self.argv(request, spec_file)
        if shutil.which(argv[0]) is None:
            raise BenchError(
                f"runner {self.name}: command '{argv[0]}' not found; {self.install_hint}"
            )
        request.log_path.parent.mkdir(parents=True, exist_ok=True)
        if request.seed is not None and not self.takes_seed:
            write_line(
                f"[{request.cell}] note: config seed not applied: `{argv[0]} run` draws its own"
                " seeds (fixed seeds are for the embedded runner)"
            )
        feed: ProgressFeed | UnsizedProgress
        if request.max_session > 0 and request.max_frame > 0:
            feed = ProgressFeed(
                request.cell, request.max_session, request.max_frame, every_s=PROGRESS_EVERY_S
            )
        else:
            feed = UnsizedProgress(request.cell)
        folder_id = _identity(cwd)
        returncode = _run_logged(
            argv, cwd, request.log_path, request.time_limit_s, request.cell, feed
        )
        if returncode == "timeout":
            raise BenchError(
                f"{request.cell}: run exceeded the time limit of {request.time_limit_s / 3600:g}h "
                f"and was stopped (log: {request.log_path})"
            )
        if returncode != 0 and _identity(cwd) != folder_id:
            raise BenchError(
                f"{request.cell}: the run's folder {cwd} was removed while it ran (by another "
                "build of this cell, e.g. a second --nolock run?); run one build at a time"
            )
        if returncode != 0:
            tail = _failure_lines(request.log_path)
            raise BenchError(f"{request.cell}: {argv[0]} exited with {returncode}: {tail}")
        folder = read_run_log(request.log_path).data_folder
        if not folder:
            raise BenchError(f"{request.log_path}: no data folder in the run's log")
        folder_path = cwd / "data" / folder
        return RunResult(
            run_name=folder,
            runner=self.name,
            data_folder=folder,
            folder_path=folder_path if folder_path.is_dir() else None,
        )


def _identity(folder: Path) -> tuple[int, int] | None:
    """The folder's inode: a folder deleted and made again under the same name is another."""
    try:
        stat = folder.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _failure_lines(path: Path) -> str:
    """What a failed run says: its last ``error:`` line when it wrote one, else its last lines."""
    errors = [line for line in _tail(path, 20) if line.startswith("error: ")]
    return errors[-1].removeprefix("error: ") if errors else _last_lines(path, 3)


def _tail(path: Path, count: int, window: int = 64 * 1024) -> list[str]:
    """The last ``count`` non-empty lines of the log (only its end is read: logs can be huge)."""
    with path.open("rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - window))
        text = handle.read().decode(errors="replace")
    lines = [strip_ansi(line).strip() for line in text.splitlines()]
    return [line for line in lines if line][-count:]


def _last_lines(path: Path, count: int) -> str:
    return " / ".join(_tail(path, count)) or "(empty log)"


class UnsizedProgress:
    """Progress of a run whose size is not known (a search's trials): the session's frame and
    MA, without totals or an ETA that would be made up; at most one line per PROGRESS_EVERY_S."""

    def __init__(self, cell: str):
        self.cell = cell
        self.parser = SummaryParser()
        self.last_echo: float | None = None

    def feed(self, line: str) -> str | None:
        summary = self.parser.feed(line)
        now = time.monotonic()
        if summary is None or (
            self.last_echo is not None and now - self.last_echo < PROGRESS_EVERY_S
        ):
            return None
        self.last_echo = now
        session, fields = summary
        text = f"[{self.cell}] trial {self.parser.trial} session {session + 1}"
        text += f" | frame {int(fields['frame'])}"
        if "total_reward_ma" in fields:
            text += f" | total_reward_ma {fields['total_reward_ma']:.2f}"
        return text


def _run_logged(
    argv: list[str],
    cwd: Path,
    log_path: Path,
    time_limit_s: float,
    cell: str,
    progress: ProgressFeed | UnsizedProgress,
) -> int | Literal["timeout"]:
    """Run ``argv`` with output to ``log_path``; echo progress lines on stderr (frame N of
    max_frame, session k of n, ETA); kill its process group on timeout.

    Returns the exit code, or ``"timeout"``. The child gets its own process group, owned by this
    job (``owned_group``: it dies with the job, even under SIGKILL), so a time-out or a stop
    (Ctrl-C, or a signal Snakemake passes on) kills every session process it started, not just
    the leader; a stop says so in one line.
    """
    with (
        open(log_path, "wb") as log,
        owned_group(argv, cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as group,
    ):
        proc = group.process
        assert proc.stdout is not None  # opened with stdout=PIPE
        limit = TimeLimit(group, time_limit_s)

        def on_stop(signum: int) -> None:
            group.kill(signal.SIGTERM)
            write_line(f"{cell}: stopped; its local run was killed, a rerun starts it again")
            raise SystemExit(128 + signum)

        threading.Thread(target=limit.watch, name=f"time limit {cell}", daemon=True).start()
        try:
            with stop_on_signals(on_stop):
                for raw in proc.stdout:
                    log.write(raw)
                    if line := progress.feed(raw.decode(errors="replace")):
                        write_line(line)
                returncode = proc.wait()
        finally:
            limit.finished.set()
            if proc.poll() is None:
                group.kill(signal.SIGKILL)
                proc.wait()
    return "timeout" if limit.timed_out.is_set() else returncode


class TimeLimit:
    """A run's time limit, watched from a thread: past the deadline it kills the run's process
    group (SIGKILL) and sets ``timed_out``; ``finished`` ends the watch."""

    def __init__(self, group: OwnedGroup, seconds: float) -> None:
        self.group = group
        self.deadline = time.monotonic() + seconds
        self.timed_out, self.finished = threading.Event(), threading.Event()

    def watch(self) -> None:
        while not self.finished.wait(
            min(WATCHDOG_STEP_S, max(0.0, self.deadline - time.monotonic()))
        ):
            if time.monotonic() >= self.deadline:
                self.timed_out.set()
                self.group.kill(signal.SIGKILL)
                return


def embedded_runner(options: dict) -> ProcessRunner:
    """``slm-bench run``: Stable-Baselines3 training on this machine, in this Python."""
    workers = str(options.get("workers", 1))
    return ProcessRunner(
        name="embedded",
        command=[sys.executable, "-m", "slm_bench", "run", "--workers", workers],
        takes_seed=True,
        search_args=(
            ["--reevaluate-top", str(options["reevaluate_top"])]
            if "reevaluate_top" in options
            else []
        ),
    )


def slm_lab_runner(options: dict) -> ProcessRunner:
    """The real ``slm-lab run`` in the user's SLM-Lab checkout (``--upload-hf`` with store: hf)."""
    return ProcessRunner(
        name="slm-lab",
        command=[options.get("command", "slm-lab"), "run"],
        cwd=Path(options.get("checkout", ".")),
        extra_args=["--upload-hf"] if options.get("store") == "hf" else [],
        install_hint=(
            "install SLM-Lab in its checkout (`uv sync` there, then put `slm-lab` on PATH) "
            "or choose runner: embedded"
        ),
    )
