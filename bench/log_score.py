"""Time reading a run's score from a huge SLM-Lab log: ``read_score`` against grep.

Writes a log of ``--size-mb`` (default 1024) in a temp dir, with the Running line at the start
and one trial_metrics line near the end, then times ``read_score(path)`` and
``grep trial_metrics FILE | tail -1`` side by side and prints both times and their ratio
(goal: read_score at least 10x faster). Then it cuts the end off (a killed run, no
trial_metrics line: read_score's worst case, a full backward scan) and times both again.
The file is deleted at the end.

    python bench/log_score.py [--size-mb 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slm_bench.errors import BenchError  # noqa: E402
from slm_bench.formats.logs import (  # noqa: E402
    console_line,
    output_message,
    parse_trial_metrics,
    read_score,
    running_message,
    trial_metrics_message,
    upload_messages,
)

FOLDER = "ppo_hopper_2025_03_19_060000"
SCALAR = {
    "frame": 1e7,
    "total_reward_ma": 816.18,
    "strength": 570.4,
    "max_strength": 640.2,
    "final_strength": 630.1,
    "sample_efficiency": 5.1e-05,
    "training_efficiency": 2.3e-06,
    "stability": 0.9411,
    "consistency": 0.8712,
}
START = datetime(2025, 3, 19, 6, 0, 0)


def checkpoint_block(target_bytes: int) -> bytes:
    """Session checkpoint lines as SLM-Lab prints them, about ``target_bytes`` long."""
    lines, size, i = [], 0, 0
    while size < target_bytes:
        s = i % 4
        message = (
            f"Trial 0 session {s} ppo_hopper_t0_s{s} [train_df] epi: {i}  t: 1000  wall_t: {i}"
            f"  opt_step: {i * 8}  frame: {i * 4000}  fps: 1500  total_reward: {i % 900}.5"
            f"  total_reward_ma: {i % 850}.25  loss: 0.0123  lr: 0.0003  clip_eps: 0.2"
        )
        line = console_line(
            "INFO", "slm_lab.experiment.control", "to_ckpt", message, START, 5000 + s
        ).encode()
        lines.append(line + b"\n")
        size += len(line) + 1
        i += 1
    return b"".join(lines)


def write_log(path: Path, size_bytes: int) -> int:
    """Write the log; returns the byte offset where its ending (score, output) begins."""
    running = running_message(
        "slm_lab/spec/benchmark_arc/ppo/ppo_mujoco_arc.yaml",
        "ppo_hopper",
        "train",
        4,
        f"data/{FOLDER}/ppo_hopper",
    )
    end = START + timedelta(hours=5)
    uploading, complete = upload_messages(FOLDER, "SLM-Lab/benchmark-dev")
    ending = [
        ("slm_lab.experiment.control", "run", trial_metrics_message(SCALAR)),
        ("slm_lab.experiment.control", "close", "Trial 0 done"),
        ("slm_lab.cli.main", "run_spec", output_message(FOLDER)),
        ("slm_lab.lib.hf", "upload", uploading),
        ("slm_lab.lib.hf", "upload", complete),
    ]
    head = console_line("INFO", "slm_lab.cli.main", "run_spec", running, START, 5000) + "\n"
    tail = "".join(console_line("INFO", m, f, msg, end, 5000) + "\n" for m, f, msg in ending)
    block = checkpoint_block(8 << 20)
    with path.open("wb") as handle:
        handle.write(head.encode())
        remaining = size_bytes - len(head) - len(tail.encode())
        while remaining > 0:
            chunk = block[: min(len(block), remaining)]
            cut = chunk.rfind(b"\n") + 1 or len(chunk)
            handle.write(chunk[:cut])
            remaining -= cut
        ending_at = handle.tell()
        handle.write(tail.encode())
    return ending_at


def best_time(action, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def grep_last(path: Path) -> str:
    command = f"grep trial_metrics '{path}' | tail -1"
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout


def read_score_or_error(path: Path) -> object:
    try:
        return read_score(path)
    except BenchError as error:
        return error


def compare(label: str, path: Path, repeat: int) -> tuple[object, str]:
    ours, run = best_time(lambda: read_score_or_error(path), repeat)
    grep, line = best_time(lambda: grep_last(path), repeat)
    print(
        f"{label}: read_score {ours * 1000:9.2f} ms | grep | tail -1 {grep * 1000:9.2f} ms"
        f" | ratio {grep / ours:8.1f}x"
    )
    return run, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="log size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="log_score_") as tmp:
        path = Path(tmp) / "ppo_hopper_t0.log"
        start = time.perf_counter()
        ending_at = write_log(path, args.size_mb << 20)
        size = path.stat().st_size
        print(f"wrote {size / (1 << 20):.0f} MiB log in {time.perf_counter() - start:.1f} s")

        run, line = compare("finished run", path, args.repeat)
        if isinstance(run, BenchError):
            print(f"FAIL: read_score raised: {run}")
            return 1
        expected = parse_trial_metrics(line)
        if run.trial_metrics != expected or run.data_folder != FOLDER:
            print(f"FAIL: read_score gave {run.trial_metrics} in {run.data_folder}")
            return 1
        print(f"  both found total_reward_ma {expected['total_reward_ma']} in data/{FOLDER}")

        os.truncate(path, ending_at)  # a killed run: the log ends before trial_metrics
        run, line = compare("killed run  ", path, args.repeat)
        if not isinstance(run, BenchError) or line:
            print(f"FAIL: expected no trial_metrics, got {run!r} / {line!r}")
            return 1
        print(f"  both found no trial_metrics line ({run})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
