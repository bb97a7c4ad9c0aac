"""`snakemake status` shows a running cell's progress: session k of n, frame N of max_frame, ETA."""

from __future__ import annotations

import json
import re
from pathlib import Path

from workflow_helpers import tiny_config

from slm_bench.matrix.config import build_matrix, read_config
from slm_bench.monitor.status import status_report
from slm_bench.trust.failures import record_failure

RUNS = Path(__file__).parent / "fixtures" / "slm-lab-runs"
REAL_LOG = RUNS / "ppo_cartpole_arc_2026_11_29_185430.train.log"


def setup(tmp_path: Path):
    config = read_config(tiny_config())
    return build_matrix(config), config, tmp_path / "results"


def partial_log(cell_dir: Path, lines: int) -> None:
    """The first ``lines`` of a real SLM-Lab log, as a running cell's log so far."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    head = REAL_LOG.read_text().splitlines(keepends=True)[:lines]
    (cell_dir / "train.log.partial").write_text("".join(head))


def test_a_running_cell_shows_its_progress_line(tmp_path):
    matrix, config, results = setup(tmp_path)
    # sessions 1, 3, 2, 0 at frame 500, then session 1 at 1000: the slowest is at 500 of 2000
    partial_log(results / "CartPole-v1" / "ppo", 150)
    text = status_report(matrix, config, results)
    row = next(line for line in text.splitlines() if line.startswith("CartPole-v1/ppo "))
    assert row.split()[1] == "running"
    progress = [line.strip() for line in text.splitlines() if line.strip().startswith("[")]
    assert len(progress) == 1
    assert re.match(
        r"\[CartPole-v1/ppo\] cell \d+% \(\d+/8000 frames\) \| session \d/4 frame 500/2000 \| "
        r".*cell ETA \S+ \| "
        r"log updated \S+ ago$",
        progress[0],
    ), progress[0]
    assert "1 running" in text


def test_done_failed_and_not_started_cells_show_no_progress(tmp_path):
    matrix, config, results = setup(tmp_path)
    done = results / "CartPole-v1" / "dqn"
    partial_log(done, 150)  # a leftover partial log does not matter once the marker is there
    (done / "run.json").write_text(json.dumps({"data_folder": "x", "run_name": "x"}))
    failed = results / "CartPole-v1" / "a2c"
    partial_log(failed, 150)
    record_failure(failed, "run_cell", "a2c: slm-bench exited with 1")
    text = status_report(matrix, config, results)
    states = {line.split()[0]: line.split()[1] for line in text.splitlines()[1:4]}
    assert states == {
        "CartPole-v1/dqn": "done",
        "CartPole-v1/a2c": "failed",
        "CartPole-v1/ppo": "planned",
    }
    assert not [line for line in text.splitlines() if line.strip().startswith("[")]


def test_a_running_remote_cell_shows_its_progress_from_its_log(tmp_path, monkeypatch):
    """A dstack run (the stand-in: no run executes offline) whose log so far is a real SLM-Lab
    log's beginning: the row shows the same progress line as a local run's."""
    import subprocess

    from standins import use_standin

    from slm_bench.monitor.status import add_remote_progress, cell_status, live_statuses

    matrix, _, _ = setup(tmp_path)
    stand = use_standin(tmp_path, monkeypatch, "hf_secret")
    head = "".join(REAL_LOG.read_text().splitlines(keepends=True)[:150])
    stand.scenario({"default": [{"status": "running", "log": head}]})
    task = tmp_path / "task.yml"
    task.write_text("type: task\ncommands: [sleep 1]\n")
    apply = [stand.dstack_bin, "apply", "-f", str(task), "-y", "-d", "-n", "ppo-cartpole"]
    subprocess.run(apply, check=True, capture_output=True, env=stand.env())
    journal = tmp_path / "journal.json"
    journal.write_text(json.dumps({"attempts": [{"name": "ppo-cartpole", "state": "running"}]}))
    live = live_statuses(stand.dstack_bin)
    row = cell_status("CartPole-v1/ppo", journal, tmp_path / "no", tmp_path / "no", live)
    assert row["state"] == "running"
    row = add_remote_progress(row, matrix.cell("CartPole-v1", "ppo"), stand.dstack_bin)
    assert re.match(
        r"\[CartPole-v1/ppo\] cell \d+% \(\d+/8000 frames\) \| session \d/4 frame 500/2000 "
        r"\| .*cell ETA \S+$",
        row["progress"],
    ), row["progress"]
