"""Failure records: what the next plan and ``status`` read after a stage failed."""

from __future__ import annotations

import json

from slm_bench.trust.failures import (
    HISTORY_FILE,
    clear_failure,
    failure_count,
    failure_counts,
    failure_dir,
    read_failure,
    record_failure,
)


def test_record_then_clear_by_the_same_rule_only(tmp_path):
    record_failure(tmp_path, "extract_metrics", "results/x/train.log: no trial_metrics line")
    record_failure(tmp_path, "write_row", "row not written")

    clear_failure(tmp_path, "extract_metrics")  # not the rule of the current record

    assert read_failure(tmp_path)["rule"] == "write_row"
    clear_failure(tmp_path, "write_row")
    assert read_failure(tmp_path) is None
    # The history keeps both: the count never goes down, so a recovered table stays planned once.
    assert failure_count(tmp_path) == 2


def test_count_by_rule_and_counts_only_for_dirs_that_failed(tmp_path):
    cell, other = tmp_path / "env" / "ppo", tmp_path / "env" / "a2c"
    record_failure(cell, "pull_run_folder", "x")
    record_failure(cell, "status", "y")

    assert failure_count(cell, frozenset({"pull_run_folder"})) == 1
    assert failure_counts([cell, other], frozenset({"pull_run_folder"})) == {str(cell): 1}
    assert failure_counts([other]) == {}


def test_a_line_cut_short_still_counts_and_an_unreadable_record_still_says_failed(tmp_path):
    (tmp_path / HISTORY_FILE).write_text('{"rule": "write_row"}\n{"rule": "wri')
    assert failure_count(tmp_path, frozenset({"write_row"})) == 2
    (tmp_path / "failure.json").write_text('{"rule": ')
    record = read_failure(tmp_path)
    assert record["rule"] == "?" and "unreadable failure record" in record["error"]


def test_failure_dir_from_wildcards():
    assert str(failure_dir("CartPole-v1", "ppo")) == "results/CartPole-v1/ppo"
    assert str(failure_dir("CartPole-v1")) == "results/CartPole-v1"
    assert str(failure_dir(phase="phase-1-classic-control")) == (
        "results/phases/phase-1-classic-control"
    )
    assert str(failure_dir()) == "results"


def test_record_is_one_json_object(tmp_path):
    path = record_failure(tmp_path, "upload_run", "store x: Read-only file system")
    data = json.loads(path.read_text())
    assert set(data) == {"rule", "error", "time"} and data["error"].endswith("file system")
