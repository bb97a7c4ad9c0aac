"""Progress lines: frame N of max_frame, session k of n, and an ETA from the rate so far."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slm_bench.runners.progress import (
    ProgressFeed,
    ProgressTracker,
    eta_seconds,
    human_duration,
    progress_line,
    read_progress,
)

SLM_LAB_LOG = next((Path(__file__).parent / "fixtures/slm-lab-runs").glob("*.train.log"))


def test_progress_line_shows_the_cells_share_the_sessions_frame_and_the_cells_eta():
    line = progress_line(
        "CartPole-v1/ppo", 1, 4, 12000, 40000, 48000, 250.0, total_reward_ma=58.09, fps=1111
    )
    # one unit: the percentage and the ETA are the cell's (4 x 40000 frames), both said so
    assert line == (
        "[CartPole-v1/ppo] cell 30% (48000/160000 frames) | session 2/4 frame 12000/40000 "
        "| total_reward_ma 58.09 | fps 1111 | cell ETA 4m10s"
    )


def test_no_eta_and_no_fps_before_they_are_known():
    line = progress_line("a/b", 0, 1, 0, 100, 0, None, fps=0.0)
    assert line == "[a/b] cell 0% (0/100 frames) | session 1/1 frame 0/100"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "?"), (0, "0s"), (59.4, "59s"), (61, "1m01s"), (3600 * 2 + 300, "2h05m"),
     (86400 + 3 * 3600, "1d03h"), (float("nan"), "?")],
)  # fmt: skip
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_eta_is_time_left_at_the_rate_so_far():
    assert eta_seconds(0, 100, 10) is None
    assert eta_seconds(25, 100, 10) == pytest.approx(30)
    assert eta_seconds(120, 100, 10) == 0


def test_tracker_counts_frames_of_every_session():
    now = [0.0]
    tracker = ProgressTracker("CartPole-v1/ppo", 4, 1000, clock=lambda: now[0])
    now[0] = 10.0
    tracker.update(0, 500)
    line = tracker.update(1, 500, total_reward_ma=21.5)
    assert line == (
        "[CartPole-v1/ppo] cell 25% (1000/4000 frames) | session 2/4 frame 500/1000 "
        "| total_reward_ma 21.50"
    )  # first reports only: start-up, no rate yet, no ETA
    tracker.update(1, 400)  # an older line arriving late never moves a session back
    assert tracker.frames_done == 1000


def test_the_eta_comes_from_the_rate_after_start_up():
    now = [0.0]
    tracker = ProgressTracker("CartPole-v1/ppo", 2, 1000, clock=lambda: now[0])
    now[0] = 300.0  # 5 minutes of start-up before the first checkpoint
    assert "ETA" not in tracker.update(0, 100, fps=0.0)
    now[0] = 310.0
    line = tracker.update(0, 200)  # 100 frames in 10 s: 1800 frames left take 180 s
    assert line.endswith("| cell ETA 3m00s"), line
    assert "fps" not in tracker.update(1, 100, fps=0.0)  # SLM-Lab's first fps is 0


def test_read_progress_of_a_real_slm_lab_log():
    progress = read_progress(SLM_LAB_LOG)
    assert progress.frames == {0: 5000.0, 1: 5000.0, 2: 5000.0, 3: 5000.0}
    # each session's own last MA, not the trial_metrics line that follows the last summary
    assert progress.total_reward_ma[0] == pytest.approx(25.2)
    line = progress.line("CartPole-v1/ppo", 4, 5000, elapsed_s=120)
    assert "cell 100% (20000/20000 frames)" in line and "frame 5000/5000" in line
    assert line.endswith("cell ETA 0s")


def test_read_progress_of_a_partial_log(tmp_path):
    text = SLM_LAB_LOG.read_text(errors="replace")
    cut = text.index("frame:1.00e+03")  # the first summaries only
    partial = tmp_path / "train.log.partial"
    partial.write_text(text[:cut])
    progress = read_progress(partial)
    assert set(progress.frames.values()) == {500.0}
    line = progress.line("CartPole-v1/ppo", 4, 5000, elapsed_s=60)
    frames_done = sum(progress.frames.values())
    assert f"cell ETA {human_duration(60 * (20000 - frames_done) / frames_done)}" in line
    assert "frame 500/5000" in line and f"({int(frames_done)}/20000 frames)" in line


def test_progress_feed_turns_real_log_lines_into_throttled_progress_lines():
    now = [0.0]
    feed = ProgressFeed("CartPole-v1/ppo", 4, 5000, every_s=10, clock=lambda: now[0])
    shown = []
    for line in SLM_LAB_LOG.read_text(errors="replace").splitlines():
        now[0] += 0.5
        if text := feed.feed(line):
            shown.append(text)
    assert shown, "a real SLM-Lab log gives progress lines"
    assert shown[0].startswith("[CartPole-v1/ppo] cell ")
    assert all(
        re.search(r"cell \d+% \(\d+/20000 frames\) \| session [1-4]/4 frame \d+/5000", s)
        for s in shown
    )
    assert "ETA" not in shown[0]  # the first checkpoints: no rate yet
    assert " | cell ETA " in shown[-1]
    assert feed.tracker.frames == {0: 5000.0, 1: 5000.0, 2: 5000.0, 3: 5000.0}
    assert len(shown) < sum(1 for _ in SLM_LAB_LOG.read_text(errors="replace").splitlines()) / 20
