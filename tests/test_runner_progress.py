"""The process runners' progress lines, for a run of known size and for one of unknown size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.runners import RunRequest
from slm_bench.runners.process import ProcessRunner

SUMMARY = [
    "2026-11-27 15:58:34 | INFO | PID:1 | __init__:log_summary | Trial 0 session 1 "
    "dqn_cartpole_t0_s1 [train]",
    "total_reward:120.90    total_reward_ma:58.09  loss:0.5563            fps:1111",
    "frame:2.00e+04         wall_t:18              t:5000                 epi:369",
]


def progress_lines(tmp_path: Path, capfd, **size) -> list[str]:
    """Run a program printing one SLM-Lab summary; the progress lines it made on stderr."""
    request = RunRequest(
        spec_file="s.yaml",
        spec_name="x",
        sets={},
        workdir=tmp_path,
        log_path=tmp_path / "log",
        journal_path=tmp_path / "journal.json",
        time_limit_s=60,
        cell="CartPole-v1/dqn",
        **size,
    )
    code = f"print({chr(10).join(SUMMARY)!r})"
    runner = ProcessRunner(name="embedded", command=[sys.executable, "-c", code])
    with pytest.raises(BenchError, match="no data folder"):  # a summary only, no run folder
        runner.run(request)
    return [line for line in capfd.readouterr().err.splitlines() if line.startswith("[")]


def test_a_sized_run_shows_the_cells_share_and_the_sessions_frame(tmp_path, capfd):
    (line,) = progress_lines(tmp_path, capfd, max_session=4, max_frame=100000)
    # one checkpoint: the cell's share, the session's frame, no ETA (no rate yet)
    assert line == (
        "[CartPole-v1/dqn] cell 5% (20000/400000 frames) | session 2/4 frame 20000/100000 "
        "| total_reward_ma 58.09 | fps 1111"
    )


def test_a_run_of_unknown_size_shows_no_made_up_totals(tmp_path, capfd):
    (line,) = progress_lines(tmp_path, capfd)  # e.g. a search: its trials have their budgets
    assert line == "[CartPole-v1/dqn] trial 0 session 2 | frame 20000 | total_reward_ma 58.09"
