"""A corrupted intermediate is one line that names the file and the field, blames the right
file, and says how to recover; the suggested command, run as written, recovers. Real Snakemake
runs on a copy of one tiny trained tree."""

from __future__ import annotations

import json
import os
import re
import shlex
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
TABLE = Path("results/BENCHMARKS.md")
SUGGESTED = re.compile(r"\bsnakemake ((?:--forcerun \S+)(?: [^\s;()]+)*)")


def run_suggested(workdir: Path, line: str):
    """Run the command an error line suggests, exactly as written."""
    match = SUGGESTED.search(line)
    assert match, f"no command suggested in: {line}"
    return snakemake(workdir, *shlex.split(match.group(1)))


def one_error(result) -> str:
    assert result.returncode != 0
    errors = error_lines(result.stdout)
    assert len(errors) == 1, errors
    assert "Traceback" not in result.stdout
    return errors[0]


def test_edited_metrics_blames_metrics_json_and_the_suggested_command_recovers(
    tmp_path_factory, tmp_path
):
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    metrics_path = workdir / PPO / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    table = (workdir / TABLE).read_bytes()
    metrics["total_reward_ma"] = 12.0
    metrics_path.write_text(json.dumps(metrics))

    line = one_error(snakemake(workdir))

    assert line.startswith(f"error: {PPO}/metrics.json: total_reward_ma 12.00 differs from ")
    assert "train.log" in line and f"--forcerun {PPO}/metrics.json" in line
    assert (workdir / TABLE).read_bytes() == table
    recovered = run_suggested(workdir, line)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    assert json.loads(metrics_path.read_text())["total_reward_ma"] != 12.0
    assert snakemake(workdir, "-n").stdout.count("Nothing to be done") == 1


@pytest.mark.parametrize(
    ("name", "damage", "field"),
    [
        ("metrics.json", '{"total_reward_ma": ', "invalid JSON"),
        ("upload.json", "[]", "expected a JSON object"),
        ("row.json", None, "ma"),
    ],
)
def test_corrupted_record_says_how_to_redo_it_and_that_works(
    tmp_path_factory, tmp_path, name, damage, field
):
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    path = workdir / PPO / name
    good = json.loads(path.read_text())
    if damage is None:  # an edited score
        path.write_text(json.dumps({**good, "ma": "abc"}))
    else:
        path.write_text(damage)

    line = one_error(snakemake(workdir))

    assert line.startswith(f"error: {PPO}/{name}: ") and field in line, line
    assert f"redo it with snakemake --forcerun {PPO}/{name}" in line
    recovered = run_suggested(workdir, line)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    assert json.loads(path.read_text()).keys() == good.keys()


def test_read_only_results_is_one_line_from_every_on_demand_target(tmp_path_factory, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    results = workdir / "results"
    before = tree_digest(results)
    mounted = subprocess.run(["mount", "--bind", str(results), str(results)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(results)], check=True)
        targets = ["status", "cancel", "results/audit.md", f"{PPO}/search/best.json"]
        outputs = {target: snakemake(workdir, target) for target in targets}
    finally:
        subprocess.run(["umount", str(results)], check=True)

    line = "results: Read-only file system: every job writes its outputs and logs there"
    for target, result in outputs.items():
        assert result.returncode != 0, target
        assert any(out.startswith(line) for out in result.stdout.splitlines()), result.stdout
        assert "Traceback" not in result.stdout and "OSError" not in result.stdout, target
    assert tree_digest(results) == before


def test_store_moved_after_the_upload_says_how_to_upload_there_and_that_works(
    tmp_path_factory, tmp_path
):
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["local_store"] = {"root": "other_store"}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    result = snakemake(workdir)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    errors = error_lines(result.stdout)  # one line per cell whose row failed
    for line in errors:
        assert "is not in store other_store/SLM-Lab/benchmark-dev/data/" in line
        assert "it was uploaded to results/store/SLM-Lab/benchmark-dev/data/" in line
    for _ in range(3):  # one suggestion per cell, followed as a user does
        result = run_suggested(workdir, errors[0])
        if result.returncode == 0:
            break
        errors = error_lines(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "run_cell" not in planned_jobs(result.stdout)  # nothing trained again
    table = (workdir / TABLE).read_text()
    assert "](../other_store/SLM-Lab/benchmark-dev/data/" in table or "other_store/" in table
    assert "results/store/" not in table


def test_title_and_docs_changes_render_the_table_again(tmp_path_factory, tmp_path):
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["title"] = "My Benchmarks"
    config["envs"]["CartPole-v1"]["docs"] = {"title": "Cart pole", "url": "https://example.org/cp"}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    result = snakemake(workdir)

    assert result.returncode == 0, result.stdout[-3000:]
    assert set(planned_jobs(result.stdout)) == {"write_benchmarks", "install_table", "all"}
    table = (workdir / TABLE).read_text()
    assert table.startswith("# My Benchmarks\n")
    assert "**Docs**: [Cart pole](https://example.org/cp)" in table


def test_a_garbage_plot_fails_the_report_pages_naming_it_and_redrawing_it_works(
    tmp_path_factory, tmp_path
):
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path / "work")
    plot = next((workdir / "results/plots").glob("*.png")).relative_to(workdir)
    pages = ["results/report/envs/CartPole-v1.html", "results/report/BENCHMARKS.html"]
    (workdir / plot).write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)

    result = snakemake(workdir, "--keep-going", *pages)

    assert result.returncode != 0
    errors = error_lines(result.stdout)
    assert errors and all(e.startswith(f"error: {plot}: not a readable image") for e in errors)
    assert not any((workdir / page).exists() for page in pages)
    assert run_suggested(workdir, errors[0]).returncode == 0
    rebuilt = snakemake(workdir, *pages)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
