"""SLM-Lab log lines: the writers reproduce SLM-Lab's lines, the readers find folder and score."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.formats import logs
from slm_bench.formats.logs import (
    console_line,
    output_message,
    parse_trial_metrics,
    read_run_log,
    read_score,
    running_message,
    strip_ansi,
    trial_metrics_message,
    upload_messages,
)
from slm_bench.formats.metrics import SCALAR_KEYS

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
TRAIN_FOLDER = "ppo_cartpole_2025_03_14_092653"
TRAIN_SCALAR = {
    "frame": 200000,
    "total_reward_ma": 412.3712,
    "strength": 389.123,
    "max_strength": 477.61,
    "final_strength": 455.24,
    "sample_efficiency": 0.00021349,
    "training_efficiency": 1.11319e-05,
    "stability": 0.961249,
    "consistency": 0.87412,
}


def fixture_lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


# --- writers ------------------------------------------------------------------------------


def test_writers_reproduce_slm_lab_console_lines():
    lines = fixture_lines("train_ansi.log")
    running = running_message(
        "slm_lab/spec/benchmark/ppo/ppo_cartpole.json",
        "ppo_cartpole",
        "train",
        4,
        f"data/{TRAIN_FOLDER}/ppo_cartpole",
    )
    assert lines[0] == console_line(
        "INFO",
        "slm_lab.cli.main",
        "run_spec",
        running,
        when=datetime(2025, 3, 14, 9, 26, 53),
        pid=4711,
    )
    at = datetime(2025, 3, 14, 9, 40, 5)
    metrics = console_line(
        "info", "slm_lab.experiment.control", "run", trial_metrics_message(TRAIN_SCALAR), at, 4711
    )
    assert metrics in lines
    at = datetime(2025, 3, 14, 9, 40, 6)
    assert (
        console_line("INFO", "slm_lab.cli.main", "run_spec", output_message(TRAIN_FOLDER), at, 4711)
        in lines
    )
    uploading, complete = upload_messages(TRAIN_FOLDER, "SLM-Lab/benchmark-dev")
    assert console_line("INFO", "slm_lab.lib.hf", "upload", uploading, at, 4711) in lines
    assert complete.startswith("✅ Upload complete: ") and complete.endswith(TRAIN_FOLDER)


def test_console_line_without_color_and_warning_color():
    at = datetime(2025, 1, 2, 3, 4, 5)
    plain = console_line("WARNING", "m", "f", "hello", when=at, pid=7, color=False)
    assert plain == "2025-01-02 03:04:05 | WARNING | PID:7 | m:f | hello"
    colored = console_line("WARNING", "m", "f", "hello", when=at, pid=7)
    assert "\x1b[33m" in colored and strip_ansi(colored) == plain


def test_running_message_search_and_train():
    assert running_message("s.json", "ppo", "search", 4, "data/ppo_2025_01_01_000000/ppo") == (
        "SLM-Lab: Running s.json ppo search | output: data/ppo_2025_01_01_000000/ppo"
    )
    assert running_message("s.json", "ppo", "train", 2, "data/ppo_2025_01_01_000000/ppo") == (
        "SLM-Lab: Running s.json ppo train with 2 sessions"
        " | output: data/ppo_2025_01_01_000000/ppo_t0"
    )


def test_trial_metrics_message_formats_and_orders_keys():
    scalar = dict(reversed(list(TRAIN_SCALAR.items())))  # order must come from SCALAR_KEYS
    scalar["strength"] = math.nan
    scalar["frame"] = 1e7
    message = trial_metrics_message(scalar)
    assert message == (
        "trial_metrics: frame:1.00e+07 | total_reward_ma:412.37 | strength:nan | "
        "max_strength:477.6 | final_strength:455.2 | sample_efficiency:0.0002135 | "
        "training_efficiency:1.113e-05 | stability:0.9612 | consistency:0.8741"
    )
    parsed = parse_trial_metrics(message)
    assert list(parsed) == list(SCALAR_KEYS)
    assert math.isnan(parsed["strength"])
    assert parsed["total_reward_ma"] == pytest.approx(412.37)


# --- parsing one line ---------------------------------------------------------------------


def test_strip_ansi():
    assert strip_ansi("\x1b[32m2025\x1b[0m | \x1b[31m\x1b[1mERROR\x1b[0m") == "2025 | ERROR"


def test_parse_trial_metrics_console_line_with_ansi():
    line = next(x for x in fixture_lines("train_ansi.log") if "trial_metrics" in x)
    metrics = parse_trial_metrics(line)
    assert metrics["total_reward_ma"] == 412.37
    assert metrics["frame"] == 200000
    assert list(metrics) == list(SCALAR_KEYS)


def test_parse_trial_metrics_nan_inf_and_unknown_keys():
    metrics = parse_trial_metrics(
        "trial_metrics: frame:1.00e+05 | total_reward_ma:nan | strength:inf | stability:-inf"
        " | new_metric:3.5"
    )
    assert math.isnan(metrics["total_reward_ma"])
    assert metrics["strength"] == math.inf and metrics["stability"] == -math.inf
    assert metrics["new_metric"] == 3.5


@pytest.mark.parametrize(
    "line",
    [
        "2025-03-14 09:40:05 | INFO | PID:1 | m:f | Trial 0 done",
        "trial_metrics: frame:1e5 | total_reward_ma:abc",
        "trial_metrics: frame:1e5 | total_reward_ma",
    ],
)
def test_parse_trial_metrics_rejects(line):
    with pytest.raises(BenchError):
        parse_trial_metrics(line)


# --- reading whole logs -------------------------------------------------------------------


def test_read_train_log_with_ansi():
    path = FIXTURES / "train_ansi.log"
    run = read_run_log(path)
    assert run.data_folder == TRAIN_FOLDER and run.mode == "train"
    assert run.spec_file == "slm_lab/spec/benchmark/ppo/ppo_cartpole.json"
    assert run.spec_name == "ppo_cartpole"
    assert run.n_trial_metrics == 1 and not run.is_search
    assert run.uploaded_to == f"SLM-Lab/benchmark-dev/data/{TRAIN_FOLDER}"
    assert run.trial_metrics["total_reward_ma"] == 412.37
    assert run.size == run.scanned_bytes == path.stat().st_size
    assert read_score(path) == run


def test_search_log_is_recognised_and_refused():
    run = read_run_log(FIXTURES / "search.log")
    assert run.mode == "search" and run.n_trial_metrics == 3
    assert run.trial_metrics["total_reward_ma"] == 122.04  # the last trial_metrics line
    assert run.is_search and run.running_modes == ("search",)
    with pytest.raises(
        BenchError,
        match=r"is a search log \(its Running line says search; 3 trial_metrics lines\); only",
    ):
        read_score(FIXTURES / "search.log")


def test_several_scores_without_their_running_lines_are_refused(tmp_path):
    line = "trial_metrics: frame:1.00e+05 | total_reward_ma:1.00 | strength:1"
    log = tmp_path / "no_head.log"
    log.write_text(f"{line}\nOutput: data/x_2025_01_01_000000\n{line}\n")
    run = read_run_log(log)
    assert run.n_trial_metrics == 2 and not run.is_search
    with pytest.raises(BenchError) as raised:
        read_score(log)
    assert str(raised.value) == (
        f"{log}: 2 trial_metrics lines but 0 'SLM-Lab: Running ... train' line(s) found; "
        "cannot tell which run the score is from"
    )


def _train_run(folder: str, score: float | None, sessions: int = 4) -> str:
    """One train run's lines as SLM-Lab prints them; ``score`` None: killed before its end."""
    prefix = folder.rsplit("_", 4)[0]
    lines = [
        console_line(
            "info",
            "slm_lab.cli.main",
            "run_spec",
            running_message("s.yaml", prefix, "train", sessions, f"data/{folder}/{prefix}"),
        )
    ]
    if score is not None:
        scalar = {**TRAIN_SCALAR, "total_reward_ma": score}
        lines.append(
            console_line("info", "slm_lab.lib.logger", "info", trial_metrics_message(scalar))
        )
        lines.append(console_line("info", "slm_lab.cli.main", "run_spec", output_message(folder)))
    return "\n".join(lines) + "\n"


def test_a_log_with_two_train_runs_is_not_a_search_log(tmp_path):
    log = tmp_path / "two.log"
    log.write_text(
        _train_run("ppo_a_2026_01_01_000000", 100.0) + _train_run("ppo_b_2026_01_02_000000", 200.0)
    )
    run = read_score(log)
    assert not run.is_search and run.running_modes == ("train", "train")
    assert run.mode == "train" and run.n_train_runs == 2
    # The last score with the folder of the run it belongs to.
    assert (run.data_folder, run.trial_metrics["total_reward_ma"]) == (
        "ppo_b_2026_01_02_000000",
        200.0,
    )


def test_a_killed_run_then_a_finished_one_reads_the_finished_run(tmp_path):
    log = tmp_path / "retry.log"
    log.write_text(
        _train_run("ppo_a_2026_01_01_000000", None) + _train_run("ppo_b_2026_01_02_000000", 300.0)
    )
    run = read_score(log)
    assert (run.data_folder, run.trial_metrics["total_reward_ma"]) == (
        "ppo_b_2026_01_02_000000",
        300.0,
    )
    # Without the Output line the folder is the Running line's just before the score.
    log.write_text(
        "\n".join(line for line in log.read_text().splitlines() if "Output:" not in line)
    )
    assert read_score(log).data_folder == "ppo_b_2026_01_02_000000"


@pytest.mark.parametrize(
    "score, shown", [(math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")]
)
def test_non_finite_scores_are_refused(tmp_path, score, shown):
    log = tmp_path / "inf.log"
    log.write_text(_train_run("ppo_a_2026_01_01_000000", score))
    assert read_run_log(log).trial_metrics is not None
    with pytest.raises(BenchError) as raised:
        read_score(log)
    assert str(raised.value) == (
        f"{log}: trial_metrics total_reward_ma is {shown}: expected a finite score"
    )


def test_truncated_log_has_no_score():
    run = read_run_log(FIXTURES / "truncated.log")
    assert run.data_folder == "dqn_cartpole_2025_03_16_080000" and run.trial_metrics is None
    with pytest.raises(BenchError, match=r"truncated\.log: no trial_metrics line; .*killed"):
        read_score(FIXTURES / "truncated.log")


def test_nan_metrics_log():
    run = read_score(FIXTURES / "nan_metrics.log")
    assert run.trial_metrics["total_reward_ma"] == -1245.6
    assert math.isnan(run.trial_metrics["strength"])
    assert run.trial_metrics["training_efficiency"] == -math.inf


def test_multiline_messages_and_crlf():
    run = read_score(FIXTURES / "multiline_crlf.log")
    assert run.data_folder == "a2c_gae_lunar_2025_03_18_140000"
    assert run.spec_name == "a2c_gae_lunar"
    # The wrapped message is joined; the traceback quoting the logging call is not a metrics line
    # and the raw line printed after the message is not taken in.
    assert run.n_trial_metrics == 1
    assert run.trial_metrics == {
        "frame": 300000.0,
        "total_reward_ma": 187.42,
        "strength": 301.5,
        "max_strength": 350.2,
        "final_strength": 340.7,
        "sample_efficiency": 8.123e-05,
        "training_efficiency": 4.2e-06,
        "stability": 0.8811,
        "consistency": 0.7123,
    }


def test_folder_from_uploading_line_only():
    run = read_score(FIXTURES / "upload_only.log")
    assert run.data_folder == "ppo_hopper_2025_03_19_060000"
    assert run.spec_name is None and run.mode == "train"
    assert run.uploaded_to == "SLM-Lab/benchmark-dev/data/ppo_hopper_2025_03_19_060000"
    assert run.trial_metrics["total_reward_ma"] == 2401.77


def test_read_score_errors(tmp_path):
    no_folder = tmp_path / "no_folder.log"
    no_folder.write_text("trial_metrics: frame:1.00e+05 | total_reward_ma:1.00\n")
    with pytest.raises(BenchError, match=r"no_folder\.log: no data folder"):
        read_score(no_folder)
    no_ma = tmp_path / "no_ma.log"
    no_ma.write_text("Output: data/x_2025_01_01_000000\ntrial_metrics: frame:1.00e+05\n")
    with pytest.raises(BenchError, match=r"no_ma\.log: trial_metrics line has no total_reward_ma"):
        read_score(no_ma)
    with pytest.raises(BenchError, match=r"missing\.log: cannot read log"):
        read_score(tmp_path / "missing.log")


FILLER = (
    "\x1b[32m2025-03-14 09:27:10\x1b[0m | \x1b[1mINFO\x1b[0m | \x1b[36mPID:4712\x1b[0m | "
    "\x1b[36mslm_lab.experiment.control:to_ckpt\x1b[0m | \x1b[1mTrial 0 session 0 [train_df] "
    "frame: 10000  total_reward: 21.5  total_reward_ma: 19.35\x1b[0m\n"
)
RUNNING = (
    "2025-03-14 09:26:53 | INFO | PID:1 | slm_lab.cli.main:run_spec | SLM-Lab: Running s.json "
    "big train with 4 sessions | output: data/big_2025_03_14_092653/big_t0\n"
)


def test_backward_scan_finds_metrics_across_block_edges(tmp_path, monkeypatch):
    # Tiny windows put the trial_metrics line before the tail window; a padding line of each
    # length after it moves it across each offset relative to the block edges of the backward scan.
    block = 97
    monkeypatch.setattr(logs, "TAIL_BYTES", 700)
    monkeypatch.setattr(logs, "BLOCK_BYTES", block)
    log = tmp_path / "run.log"
    metrics = "trial_metrics: frame:2.00e+05 | total_reward_ma:99.50 | strength:7\n"
    for pad in range(block + 1):
        log.write_text(RUNNING + FILLER + metrics + "x" * pad + "\n" + FILLER * 5)
        run = read_run_log(log)
        assert run.trial_metrics == {"frame": 2e5, "total_reward_ma": 99.5, "strength": 7}, pad
        assert run.data_folder == "big_2025_03_14_092653" and run.mode == "train"


class ReadCounter:
    """Counts the bytes ``logs`` reads from a log (its ``_read_at``)."""

    def __init__(self, read_at) -> None:
        self.read_at, self.bytes = read_at, 0

    def __call__(self, handle, offset: int, size: int) -> bytes:
        data = self.read_at(handle, offset, size)
        self.bytes += len(data)
        return data


def count_reads(monkeypatch) -> ReadCounter:
    counter = ReadCounter(logs._read_at)
    monkeypatch.setattr(logs, "_read_at", counter)
    return counter


def test_huge_log_is_read_only_at_its_ends(tmp_path, monkeypatch):
    # A 1 GB sparse file: the Running line at the start, the score at the end.
    log = tmp_path / "huge.log"
    size = 1 << 30
    tail = (
        FILLER * 10 + "2025-03-14 11:00:00 | INFO | PID:1 | slm_lab.experiment.control:run | "
        "trial_metrics: frame:1.00e+07 | total_reward_ma:816.18 | strength:570.4\n"
        "2025-03-14 11:00:01 | INFO | PID:1 | slm_lab.cli.main:run_spec | "
        "Output: data/big_2025_03_14_092653\n"
    ).encode()
    with log.open("wb") as handle:
        handle.write(RUNNING.encode() + FILLER.encode())
        handle.truncate(size - len(tail))
        handle.seek(size - len(tail))
        handle.write(tail)
    reads = count_reads(monkeypatch)
    run = read_score(log)
    assert run.trial_metrics["total_reward_ma"] == 816.18
    assert run.data_folder == "big_2025_03_14_092653"
    assert reads.bytes <= logs.HEAD_BYTES + logs.RECORD_BYTES + logs.TAIL_BYTES


def test_killed_huge_log_is_not_read_whole(tmp_path, monkeypatch):
    log = tmp_path / "killed.log"
    with log.open("wb") as handle:
        handle.write(RUNNING.encode())
        handle.truncate(1 << 30)
        handle.seek((1 << 30) - len(FILLER))
        handle.write(FILLER.encode())
    reads = count_reads(monkeypatch)
    with pytest.raises(BenchError, match=r"killed\.log: no trial_metrics line in its last 64 MiB"):
        read_score(log)
    limit = logs.HEAD_BYTES + logs.RECORD_BYTES + logs.TAIL_BYTES + logs.SCAN_BYTES + (1 << 20)
    assert reads.bytes < limit


def test_trial_metrics_beyond_scan_window_is_not_seen(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "TAIL_BYTES", 300)
    monkeypatch.setattr(logs, "BLOCK_BYTES", 200)
    monkeypatch.setattr(logs, "SCAN_BYTES", 1000)
    log = tmp_path / "run.log"
    metrics = "trial_metrics: frame:2.00e+05 | total_reward_ma:99.50 | strength:7\n"
    log.write_text(RUNNING + metrics + FILLER * 3)  # ~700 bytes after the line: found
    assert read_run_log(log).trial_metrics["total_reward_ma"] == 99.5
    log.write_text(RUNNING + metrics + FILLER * 6)  # ~1400 bytes after it: not looked at
    run = read_run_log(log)
    assert run.trial_metrics is None and run.scanned_bytes == 1000
