"""The build-level progress line, and light jobs that never wait behind training."""

from __future__ import annotations

import logging
import re

from workflow_helpers import make_workdir, snakemake, tiny_config

from slm_bench.monitor.build_progress import BuildProgress, BuildProgressHandler


def record(**extra) -> logging.LogRecord:
    """A log record as Snakemake makes one: its event fields are the record's attributes."""
    entry = logging.LogRecord("snakemake.logging", logging.INFO, "", 0, "", None, None)
    entry.__dict__.update(extra)
    return entry


def test_the_line_counts_cells_trained_and_jobs_and_gives_an_eta_once_a_cell_is_trained():
    now = [0.0]
    lines: list[str] = []
    handler = BuildProgressHandler(BuildProgress(clock=lambda: now[0], train_cores=2), lines.append)
    handler.emit(record(event="run_info", stats={"run_cell": 3, "write_row": 3, "total": 21}))
    assert lines.pop() == (
        "build: 21 job(s) planned, 3 cell(s) to train on 2 core(s) (Snakemake's \"Provided "
        'cores: 3" counts one more, kept for the light jobs: upload, metrics, row and plot never '
        "wait behind training)"
    )
    handler.emit(record(event="job_info", jobid=1, rule_name="validate_spec"))
    handler.emit(record(event="job_info", jobid=2, rule_name="run_cell"))
    now[0] = 5.0
    handler.emit(record(event="job_finished", job_id=1))
    handler.emit(record(event="progress", done=1, total=21))
    assert lines.pop() == "build: cells 0/3 trained | jobs 1/21 | elapsed 5s"  # no ETA yet
    now[0] = 200.0
    handler.emit(record(event="job_finished", job_id=2))
    handler.emit(record(event="progress", done=2, total=21))
    # 200 s per cell so far, 2 cells left
    assert lines.pop() == "build: cells 1/3 trained | jobs 2/21 | elapsed 3m20s | ETA 6m40s"
    now[0] = 260.0  # the next cell has trained for a minute since
    handler.emit(record(event="progress", done=3, total=21))
    assert lines.pop().endswith("| ETA 5m40s")


def test_a_build_without_training_shows_jobs_only_and_no_eta():
    lines: list[str] = []
    handler = BuildProgressHandler(BuildProgress(clock=lambda: 0.0, train_cores=2), lines.append)
    handler.emit(record(event="run_info", stats={"write_benchmarks": 1, "total": 2}))
    handler.emit(record(event="progress", done=1, total=2))
    assert lines == ["build: 2 job(s) planned, no cell to train", "build: jobs 1/2 | elapsed 0s"]


def test_a_finished_cells_row_is_written_while_the_next_cell_trains(tmp_path):
    """With 2 cores each training takes both; the first cell's upload, metrics and row still
    run before the second cell's training ends (the light-job slot in rules/common.smk)."""
    config = tiny_config()
    cartpole = config["envs"]["CartPole-v1"]
    cartpole["algorithms"] = {algo: cartpole["algorithms"][algo] for algo in ("dqn", "ppo")}
    cartpole["settings"]["max_frame"] = 4000
    workdir = make_workdir(tmp_path / "w", config)
    result = snakemake(workdir, cores=2)
    assert result.returncode == 0, result.stdout[-4000:]

    cells = {algo: workdir / "results" / "CartPole-v1" / algo for algo in ("dqn", "ppo")}
    trained = {algo: (cell / "run.json").stat().st_mtime for algo, cell in cells.items()}
    first, last = sorted(trained, key=trained.get)
    row_written = (cells[first] / "row.json").stat().st_mtime
    assert row_written < trained[last], (
        f"{first}'s row at {row_written}, {last}'s training ended at {trained[last]}"
    )

    build = [line for line in result.stdout.splitlines() if line.startswith("build: ")]
    assert re.match(r"build: \d+ job\(s\) planned, 2 cell\(s\) to train on 2 core\(s\)", build[0])
    progress = build[1:]
    assert progress[-1].startswith("build: cells 2/2 trained | jobs ")
    before = progress[: next(i for i, x in enumerate(progress) if "cells 1/2" in x)]
    assert before and not any("ETA" in line for line in before)  # no ETA before a rate
    assert all(
        re.match(r"build: cells [0-2]/2 trained \| jobs \d+/\d+ \| elapsed ", x) for x in progress
    )
    # the cells' own lines: the cell's share and ETA, the session's frame
    cell_lines = [line for line in result.stdout.splitlines() if line.startswith("[CartPole")]
    assert cell_lines and all(" cell " in line and "frames)" in line for line in cell_lines)
    assert not any("fps 0 " in line or line.endswith("fps 0") for line in cell_lines)


def test_the_report_says_what_it_will_build_first(tmp_path):
    """The report target on a config not trained yet trains it first: the plan's first line
    says so, and a dry run shows it without running anything."""
    workdir = make_workdir(tmp_path / "w", tiny_config())
    result = snakemake(workdir, "-n", "report_pages")
    assert result.returncode == 0, result.stdout[-3000:]
    plan = [line for line in result.stdout.splitlines() if line.startswith("build: ")]
    assert len(plan) == 1 and re.fullmatch(
        r"build: \d+ job\(s\) planned, 3 cell\(s\) to train on 2 core\(s\) .*", plan[0]
    ), plan
    assert not (workdir / "results").exists()  # a dry run: nothing trained
