"""The workflow's guarantees, each broken on purpose on a copy of one trained results tree:

- a failing table job leaves the previous BENCHMARKS.md byte for byte (it is staged beside it);
- a row is derived, never trusted as typed (row.json is cross-checked before it is published);
- a failed stage is never reported as done: the next plain run redoes it, or fails again;
- every error is one line, naming the file, and a non-zero exit;
- the other cells are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_helpers import (
    copy_tree,
    error_lines,
    planned_jobs,
    snakemake,
    trained_tree,
    tree_digest,
)

pytestmark = pytest.mark.slow

PPO = Path("results/CartPole-v1/ppo")
A2C = Path("results/CartPole-v1/a2c")
TABLE = Path("results/BENCHMARKS.md")
# Logs and failure records are rewritten by any run; everything else of a cell must not change.
VOLATILE = ("failure.json", "failures.jsonl")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return trained_tree(tmp_path_factory)


class Tree:
    """A copy of the trained tree, with what a test compares before and after."""

    def __init__(self, source: Path, dest: Path):
        self.workdir = copy_tree(source, dest)
        self.table = self.digest_table()
        self.cells = {cell: self.cell_digest(cell) for cell in (PPO, A2C)}

    def path(self, relative: Path | str) -> Path:
        return self.workdir / relative

    def digest_table(self) -> bytes:
        return self.path(TABLE).read_bytes()

    def cell_digest(self, cell: Path) -> dict[str, str]:
        return tree_digest(self.path(cell), skip=VOLATILE)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return snakemake(self.workdir, *args)

    def edit_json(self, relative: Path, **changes) -> None:
        path = self.path(relative)
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data))

    def config(self) -> dict:
        return yaml.safe_load(self.path("config.yaml").read_text())

    def write_config(self, config: dict) -> None:
        self.path("config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def assert_table_and_cell_kept(self, cell: Path = A2C) -> None:
        assert self.digest_table() == self.table, "BENCHMARKS.md changed"
        assert self.cell_digest(cell) == self.cells[cell], f"{cell} changed"


def one_failure(result: subprocess.CompletedProcess, *expected: str) -> str:
    """The run failed with exactly one distinct error line, holding every ``expected`` text."""
    assert result.returncode != 0, result.stdout[-3000:]
    errors = error_lines(result.stdout)
    assert len(errors) == 1, errors
    assert all(text in errors[0] for text in expected), errors
    assert "Traceback" not in result.stdout
    return errors[0]


# -- 9.1 and 9.3: a failing table job, a row that is not what its sources say ------------------


ROW_BREAKS = {
    # name -> (how row.json is broken, the text the error line must hold)
    "truncated": (lambda text: text[: len(text) // 2], "invalid JSON"),
    "hand-edited ma": (lambda text: text.replace('"ma": ', '"ma": 999, "was": '), "ma 999"),
    "infinite ma": (
        lambda text: json.dumps({**json.loads(text), "ma": float("inf")}),
        "expected a finite number",
    ),
    "status typed": (
        lambda text: json.dumps({**json.loads(text), "status": "✅"}),
        "status '✅' differs",
    ),
}


@pytest.mark.parametrize("name", list(ROW_BREAKS))
def test_a_bad_row_is_refused_and_the_table_kept(trained, tmp_path, name):
    tree = Tree(trained, tmp_path / "work")
    row = tree.path(PPO / "row.json")
    breaker, expected = ROW_BREAKS[name]
    row.write_text(breaker(row.read_text()))

    first = tree.run()

    line = one_failure(first, str(PPO / "row.json"), expected)
    assert tree.digest_table() == tree.table
    assert not tree.path("results/BENCHMARKS.staged.md").exists()
    assert tree.cell_digest(A2C) == tree.cells[A2C]
    assert json.loads(tree.path("results/failure.json").read_text())["error"] in line
    # Not hidden by the next run: the table job is planned again and refuses again.
    second = tree.run()
    assert one_failure(second) == line
    tree.assert_table_and_cell_kept()


def test_a_label_a_table_cannot_hold_leaves_the_table_as_it_was(trained, tmp_path):
    tree = Tree(trained, tmp_path / "work")
    config = tree.config()
    config["envs"]["CartPole-v1"]["algorithms"]["ppo"]["label"] = "PP|O"
    tree.write_config(config)

    result = tree.run()

    # Refused at plan time or by the table job, with one line either way.
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if "PP|O" in line and "expected" in line]
    assert len(set(lines)) == 1, result.stdout[-3000:]
    assert "Traceback" not in result.stdout
    tree.assert_table_and_cell_kept()


def test_a_non_finite_score_never_reaches_a_row(trained, tmp_path):
    tree = Tree(trained, tmp_path / "work")
    row_before = tree.path(PPO / "row.json").read_bytes()
    tree.edit_json(PPO / "metrics.json", total_reward_ma=float("nan"))

    result = tree.run()

    one_failure(result, str(PPO / "metrics.json"), "expected a finite number")
    assert tree.path(PPO / "row.json").read_bytes() == row_before
    tree.assert_table_and_cell_kept()


# -- 9.4: a failed stage is redone by the next plain run ---------------------------------------


def test_failed_extract_metrics_is_redone_not_hidden(trained, tmp_path):
    tree = Tree(trained, tmp_path / "work")
    log = tree.path(PPO / "train.log")
    good = log.read_text()
    log.write_text("\n".join(line for line in good.splitlines() if "trial_metrics" not in line))

    failed = tree.run()

    line = one_failure(failed, str(PPO / "train.log"))
    record = json.loads(tree.path(PPO / "failure.json").read_text())
    assert record["rule"] == "extract_metrics" and record["error"] in line
    tree.assert_table_and_cell_kept()
    # Before: the next run said "Nothing to be done" (metrics.json is an intermediate file).
    plan = tree.run("-n")
    assert plan.returncode == 0, plan.stdout[-3000:]
    assert planned_jobs(plan.stdout).get("extract_metrics") == 1, plan.stdout[-3000:]
    again = tree.run()
    assert one_failure(again) == line
    tree.assert_table_and_cell_kept()

    log.write_text(good)
    fixed = tree.run()

    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert "rule run_cell:" not in fixed.stdout  # the run itself was never redone
    assert not tree.path(PPO / "failure.json").exists()
    assert tree.digest_table() == tree.table  # same score, same row, same table
    settled = tree.run("-n")
    assert "Nothing to be done" in settled.stdout, settled.stdout[-3000:]


# -- 9.7: one line for every error path --------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "failing_rule"),
    [("metrics.json", "pull_run_folder"), ("run.json", "extract_metrics"), ("upload.json", None)],
)
def test_a_truncated_record_is_one_line(trained, tmp_path, file, failing_rule):
    tree = Tree(trained, tmp_path / "work")
    path = tree.path(PPO / file)
    path.write_text(path.read_text()[:40])

    result = tree.run()

    one_failure(result, str(PPO / file), "invalid JSON")
    if failing_rule:
        assert f"Error in rule {failing_rule}:" in result.stdout
    tree.assert_table_and_cell_kept()


def test_an_unexpected_exception_is_one_line_with_the_traceback_in_the_log(trained, tmp_path):
    tree = Tree(trained, tmp_path / "work")
    # A folder name of the wrong type: no check foresees it, so the code fails unexpectedly.
    tree.edit_json(PPO / "metrics.json", data_folder=7)
    tree.edit_json(PPO / "upload.json", data_folder=7)

    result = tree.run()

    line = one_failure(result, "unexpected TypeError", "results/logs/pull_run_folder/")
    log = tree.path("results/logs/pull_run_folder/CartPole-v1/ppo.log").read_text()
    assert "Traceback (most recent call last)" in log and line in log
    tree.assert_table_and_cell_kept()


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_a_full_disk_is_one_line_and_the_table_is_kept(trained, tmp_path):
    """results/ on a tmpfs with every block and every inode taken: a real ENOSPC."""
    tree = Tree(trained, tmp_path / "work")
    results = tree.path("results")
    saved = tmp_path / "saved"
    os.replace(results, saved)
    results.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(results)):
        os.rmdir(results)
        os.replace(saved, results)
        pytest.skip("mounting a tmpfs needs root")
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", str(results)], check=True)
        # The job's old log stays: Snakemake deletes it first, so the new log gets its inode
        # and the staged table is the first file that cannot be created.
        tree.edit_json(PPO / "row.json")  # same content, newer: the table is rebuilt
        # install_table leaves the staged file a hard link of the table (copying the tree made
        # two files of it): deleting it before the job then frees no inode and no block.
        staged = results / "BENCHMARKS.staged.md"
        staged.unlink()
        os.link(results / "BENCHMARKS.md", staged)
        filler = results / "filler"
        with filler.open("wb", buffering=0) as handle:
            try:
                while handle.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
        stat = os.statvfs(results)
        assert _mount("-o", f"remount,nr_inodes={stat.f_files - stat.f_ffree}", str(results))

        result = tree.run()

        line = one_failure(result, "BENCHMARKS.staged.md", "No space left on device")
        assert "failure not recorded" in line and "--forcerun write_benchmarks" in line
        tree.assert_table_and_cell_kept()
        filler.unlink()
        assert _mount("-o", "remount,nr_inodes=100000", str(results))
        # Nothing could be recorded, yet the next plain run redoes the table: its staged file
        # is missing beside it.
        recovered = tree.run()
        assert recovered.returncode == 0, recovered.stdout[-3000:]
        assert planned_jobs(recovered.stdout).get("write_benchmarks") == 1
        assert tree.digest_table() == tree.table
    finally:
        subprocess.run(["umount", "-l", str(results)], check=True)


@pytest.mark.parametrize(
    "env_id", ["Cart Pole-v1", "CartPole-v1\nx", "CartPole-v1$(touch INJECTED)"]
)
def test_an_env_id_a_table_cannot_hold_leaves_everything_as_it_was(trained, tmp_path, env_id):
    tree = Tree(trained, tmp_path / "work")
    config = tree.config()
    cartpole = config["envs"]["CartPole-v1"]
    config["envs"][env_id] = {**cartpole, "algorithms": {"ppo": cartpole["algorithms"]["ppo"]}}
    tree.write_config(config)

    result = tree.run("--keep-going")

    assert result.returncode != 0
    assert "Traceback" not in result.stdout, result.stdout[-3000:]
    assert not list(tree.workdir.rglob("INJECTED")) and not list(tmp_path.rglob("INJECTED"))
    tree.assert_table_and_cell_kept(PPO)
    tree.assert_table_and_cell_kept(A2C)


def test_renaming_a_row_replans_the_table_not_the_training(trained, tmp_path):
    """Label and target are what only the table shows: changing them never re-plans the run or
    its upload (metrics.json, which names the label, and what reads it are rebuilt)."""
    tree = Tree(trained, tmp_path / "w")
    config = yaml.safe_load(tree.path("config.yaml").read_text())
    config["envs"]["CartPole-v1"]["algorithms"]["ppo"]["label"] = "PPO (clip)"
    config["envs"]["CartPole-v1"]["target"] = "> 450"
    tree.path("config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    plan = tree.run("-n")
    assert plan.returncode == 0, plan.stdout[-3000:]
    jobs = planned_jobs(plan.stdout)
    assert "write_row" in jobs and "write_benchmarks" in jobs, jobs
    assert not {"validate_spec", "run_cell", "upload_run"} & set(jobs), jobs
