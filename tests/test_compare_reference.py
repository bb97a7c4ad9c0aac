"""The compare gate cannot pass on garbage: a reference that does not read as a BENCHMARKS.md or a
results folder is one line naming the file (and line) and a non-zero exit; "no reference" is
only a cell a valid reference lacks, and the gate counts those cells."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from tiny_results import copy_of, tiny_benchmark
from workflow_helpers import error_lines, planned_jobs, snakemake

from slm_bench.errors import BenchError
from slm_bench.statistics.compare import NO_REFERENCE, check_comparison
from slm_bench.statistics.reference import parse_ma, read_reference

SLM_LAB_TABLE = Path(__file__).parent / "fixtures/slm-lab/BENCHMARKS.md"
PPO_ROW = re.compile(r"^\| PPO \|[^|]*\| (?P<ma>-?[0-9.]+) \|", re.MULTILINE)


def with_ppo_ma(text: str, ma: str) -> str:
    """The table with its first PPO row's MA cell replaced by ``ma``."""
    found = PPO_ROW.search(text)
    start, end = found.span("ma")
    return text[:start] + ma + text[end:]


def duplicated_ppo_row(text: str) -> str:
    found = PPO_ROW.search(text)
    line_end = text.index("\n", found.start()) + 1
    row = text[found.start() : line_end]
    return text[:line_end] + row.replace(found.group("ma"), "1.00", 1) + text[line_end:]


def line_of_ppo_row(text: str, nth: int = 0) -> int:
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith("| PPO |")][nth]


# -- reading ------------------------------------------------------------------------------------


def test_slm_labs_whole_table_reads_as_a_reference():
    entries = read_reference(SLM_LAB_TABLE)
    assert len(entries) == 292  # every result row, each with a finite MA
    ppo = next(e for e in entries if e.spec_name == "ppo_cartpole_arc")
    assert ppo.ma == 498.94 and ppo.source == "BENCHMARKS.md" and ppo.line > 100


@pytest.mark.parametrize(
    ("cell", "value"),
    [("498.94", 498.94), ("**4432.73**", 4432.73), ("~1,234.5", 1234.5), ("❌ 327.79", 327.79)],
)
def test_ma_cells_as_slm_lab_writes_them(cell, value):
    assert parse_ma(cell, "f line 3") == value


@pytest.mark.parametrize("cell", ["", "-", "N/A"])
def test_an_ma_cell_that_says_not_tested_is_no_result(cell):
    assert parse_ma(cell, "f line 3") is None


@pytest.mark.parametrize("cell", ["abc", "inf", "-inf", "nan", "NaN", "1e999", "12 34", "**"])
def test_an_unreadable_or_non_finite_ma_is_one_line_with_file_and_line(tmp_path, cell):
    text = SLM_LAB_TABLE.read_text()
    path = tmp_path / "ref.md"
    path.write_text(with_ppo_ma(text, cell))
    with pytest.raises(BenchError) as error:
        read_reference(path)
    message = str(error.value)
    assert message.startswith(f"{path} line {line_of_ppo_row(text)}: MA {cell!r}: expected a")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "has no result table"),
        ("# Benchmarks\n\nNo table here.\n", "has no result table"),
        ("root:x:0:0:root:/root:/bin/bash\n", "has no result table"),
        ("| a | b |\n|---|---|\n| 1 | 2 |\n", "has no result table"),
        (b"\xff\xfe binary", "not UTF-8 text"),
    ],
)
def test_a_file_that_is_no_benchmarks_md_is_refused(tmp_path, content, fragment):
    path = tmp_path / "ref.md"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(BenchError) as error:
        read_reference(path)
    assert str(error.value).startswith(f"{path}: ") and fragment in str(error.value)


def test_two_rows_for_one_cell_are_refused_naming_both_lines(tmp_path):
    text = SLM_LAB_TABLE.read_text()
    path = tmp_path / "ref.md"
    path.write_text(duplicated_ppo_row(text))
    first = line_of_ppo_row(text)
    with pytest.raises(BenchError) as error:
        read_reference(path)
    assert str(error.value).startswith(f"{path} line {first + 1}: compare reference")
    assert f"has two rows for CartPole-v1 PPO (the other at {path} line {first})" in str(
        error.value
    )


def test_a_path_that_is_neither_file_nor_folder_is_refused(tmp_path):
    with pytest.raises(BenchError, match="is not a regular file or a folder"):
        read_reference(os.devnull)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BenchError, match="is not a regular file or a folder"):
        read_reference(fifo)  # refused without opening it (an open would block)


def test_a_results_folder_with_a_non_finite_ma_is_refused(tmp_path):
    cell = tmp_path / "CartPole-v1" / "ppo"
    cell.mkdir(parents=True)
    metrics = {"env_id": "CartPole-v1", "algorithm": "PPO", "spec_name": "p"}
    (cell / "metrics.json").write_text(json.dumps({**metrics, "total_reward_ma": 480.0}))
    assert read_reference(tmp_path)[0].ma == 480.0
    (cell / "metrics.json").write_text(json.dumps(metrics)[:-1] + ', "total_reward_ma": NaN}')
    with pytest.raises(BenchError, match="metrics.json: total_reward_ma: expected a finite number"):
        read_reference(tmp_path)


def test_the_gate_counts_cells_without_reference_and_fails_when_none_has_one(tmp_path):
    def cell(name: str, verdict: str) -> dict:
        ma = None if verdict == NO_REFERENCE else 480.0
        difference = None if ma is None else 0.0
        return {"cell": name, "env_id": name.split("/")[0], "algorithm": "PPO", "new_ma": 480.0,
                "reference_ma": ma, "difference": difference, "verdict": verdict}  # fmt: skip

    path = tmp_path / "compare.json"
    lines: list[str] = []
    some = [cell("CartPole-v1/ppo", "within noise"), cell("Acrobot-v1/ppo", NO_REFERENCE)]
    path.write_text(json.dumps({"reference": "ref.md", "cells": some}))
    check_comparison(path, True, tmp_path / "checked", lines.append)
    assert lines[-1] == (
        "0 regression(s) in 1 compared cell(s); 1 cell(s) have no reference in ref.md"
    )
    none = [cell("CartPole-v1/ppo", NO_REFERENCE), cell("Acrobot-v1/ppo", NO_REFERENCE)]
    path.write_text(json.dumps({"reference": "ref.md", "cells": none}))
    with pytest.raises(BenchError, match="none of the 2 cell.s. has a row in ref.md"):
        check_comparison(path, True, tmp_path / "checked", print)
    check_comparison(path, False, tmp_path / "checked", print)  # gate off: reported only


# -- the real workflow ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return tiny_benchmark(tmp_path_factory)


def gate(workdir: Path, reference: str):
    config = (workdir / "config.yaml").read_text().split("compare_reference:")[0]
    config += f"compare_reference: {json.dumps(reference)}\ncompare_gate: true\n"
    (workdir / "config.yaml").write_text(config)
    return snakemake(workdir, "compare")


@pytest.mark.slow
def test_the_gate_fails_with_one_line_on_every_unreadable_reference(built, tmp_path):
    workdir = copy_of(built, tmp_path / "work")
    table = (workdir / "results" / "BENCHMARKS.md").read_text()
    refs = tmp_path / "refs"
    refs.mkdir()
    ppo_line = line_of_ppo_row(table)
    hops = "../" * len(workdir.resolve().parts)  # from the workdir up past the root
    cases: dict[str, tuple[str, str]] = {  # reference -> (its text or None, the line's start)
        "no_table.md": ("# Benchmarks\n\nNothing measured yet.\n", "{ref}: compare reference"),
        "empty.md": ("", "{ref}: compare reference has no result table"),
        "/etc/passwd": (None, "/etc/passwd: compare reference has no result table"),
        f"{hops}etc/hostname": (None, f"{hops}etc/hostname: compare reference has no result"),
        "abc.md": (with_ppo_ma(table, "abc"), f"{{ref}} line {ppo_line}: MA 'abc': expected"),
        "inf.md": (with_ppo_ma(table, "inf"), f"{{ref}} line {ppo_line}: MA 'inf': expected"),
        "nan.md": (with_ppo_ma(table, "nan"), f"{{ref}} line {ppo_line}: MA 'nan': expected"),
        "two_rows.md": (duplicated_ppo_row(table), f"{{ref}} line {ppo_line + 1}: compare"),
        os.devnull: (None, f"{os.devnull}: compare reference is not a regular file"),
    }
    for name, (text, start) in cases.items():
        reference = name
        if text is not None:
            reference = str(refs / name)
            Path(reference).write_text(text)
        result = gate(workdir, reference)
        assert result.returncode != 0, (name, result.stdout[-2000:])
        errors = error_lines(result.stdout)
        assert len(errors) == 1 and errors[0].startswith("error: " + start.format(ref=reference)), (
            name,
            errors,
        )
        assert "no reference" not in result.stdout, name
        assert "run_cell" not in planned_jobs(result.stdout), "comparing must not retrain"


@pytest.mark.slow
def test_no_reference_is_a_cell_a_valid_reference_lacks_and_the_gate_counts_it(built, tmp_path):
    workdir = copy_of(built, tmp_path / "work")
    table = (workdir / "results" / "BENCHMARKS.md").read_text()
    # The reference without Acrobot's section: two cells compared, one has no reference.
    cut = table.index("Acrobot-v1")
    partial = tmp_path / "cartpole_only.md"
    partial.write_text(table[: table.rindex("\n####", 0, cut) + 1])
    result = gate(workdir, str(partial))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Acrobot-v1/ppo: no reference" in result.stdout
    assert f"in 2 compared cell(s); 1 cell(s) have no reference in {partial}" in result.stdout
    # A valid reference with none of the cells: the gate compared nothing and fails.
    other = tmp_path / "other_envs.md"
    other.write_text(table.replace("CartPole-v1", "MountainCar-v0").replace("Acrobot-v1", "Pong"))
    result = gate(workdir, str(other))
    assert result.returncode != 0, result.stdout[-3000:]
    assert error_lines(result.stdout) == [
        "error: results/compare.json: compare_gate: none of the 3 cell(s) has a row"
        f" in {other}, so nothing was compared"
    ]
