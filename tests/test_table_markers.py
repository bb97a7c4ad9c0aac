"""A maintainer's status marker inside an MA cell (tables without a Status column, such as the
shared Atari table ``| ENV | MA | SPEC_NAME | HF Data |``): ``❌ 327.79`` marks a failed row.
Updating the row keeps the marker, or recomputes it when the env has a target."""

from __future__ import annotations

from pathlib import Path

import pytest

from slm_bench.formats.benchmarks_md import BenchmarksDoc, ResultRow, split_ma
from slm_bench.formats.naming import dataset_url

FIXTURES = Path(__file__).parent / "fixtures"
ATARI = (FIXTURES / "benchmarks" / "atari_groups.md").read_text()
BREAKOUT = "| ALE/Breakout-v5 | 326.47 | ppo_atari_lam70_arc |"
DOCS_END = "Action: Discrete(4-18, game-dependent)"


def new_row(score: float, status: str = "") -> ResultRow:
    folder = "ppo_atari_lam70_arc_breakout_2026_04_01_000000"
    return ResultRow.build(
        "PPO",
        status,
        score,
        "slm_lab/spec/benchmark_arc/ppo/ppo_atari_arc.yaml",
        "ppo_atari_lam70_arc",
        folder,
        dataset_url("SLM-Lab/benchmark", folder),
    )


def breakout_line(doc: BenchmarksDoc) -> str:
    return doc.lines[doc.find_env("ALE/Breakout-v5").row_lines[0]]


@pytest.mark.parametrize(
    ("cell", "parts"),
    [
        ("❌ 327.79", ("❌ ", "327.79", "")),
        ("❌327.79", ("❌", "327.79", "")),
        ("327.79 ❌", ("", "327.79", " ❌")),
        ("⚠️ -12.5", ("⚠️ ", "-12.5", "")),
        ("327.79", ("", "327.79", "")),
        ("❌", ("", "❌", "")),  # a marker alone is not a score: left as typed
    ],
)
def test_ma_cell_splits_into_marker_and_number(cell, parts):
    assert split_ma(cell) == parts


@pytest.mark.parametrize("marked", ["❌ 326.47", "326.47 ❌"])
def test_update_of_a_marked_row_without_a_target_keeps_the_marker(marked):
    doc = BenchmarksDoc.parse(ATARI.replace(BREAKOUT, BREAKOUT.replace("326.47", marked)))
    assert split_ma(doc.find_env("ALE/Breakout-v5").rows[0].ma)[1] == "326.47"

    doc.upsert_row("ALE/Breakout-v5", new_row(350.0))

    expected = marked.replace("326.47", "350.00")
    assert breakout_line(doc).startswith(f"| ALE/Breakout-v5 | {expected} | ppo_atari_lam70_arc |")
    pre, _, post = split_ma(doc.find_env("ALE/Breakout-v5").rows[0].ma)
    assert (pre + post).strip() == "❌"


def test_update_of_a_marked_row_recomputes_it_against_the_target():
    text = ATARI.replace(BREAKOUT, BREAKOUT.replace("326.47", "❌ 326.47"))
    text = text.replace(DOCS_END, f"{DOCS_END} | Target reward MA > 400", 1)
    doc = BenchmarksDoc.parse(text)
    assert doc.find_env("ALE/Breakout-v5").target == "> 400"

    doc.upsert_row("ALE/Breakout-v5", new_row(350.0, ""))  # still short of 400: Failed
    assert breakout_line(doc).startswith("| ALE/Breakout-v5 | ❌ 350.00 |")

    doc.upsert_row("ALE/Breakout-v5", new_row(420.0, "✅"))  # solved: the failure mark goes
    assert breakout_line(doc).startswith("| ALE/Breakout-v5 | 420.00 |")


def test_unmarked_rows_get_no_marker():
    doc = BenchmarksDoc.parse(ATARI)
    doc.upsert_row("ALE/Breakout-v5", new_row(350.0))
    assert breakout_line(doc).startswith("| ALE/Breakout-v5 | 350.00 | ppo_atari_lam70_arc |")


def test_real_benchmarks_md_ma_cells_are_numbers_or_marked_numbers():
    """Every MA cell of SLM-Lab's real docs/BENCHMARKS.md (a verbatim copy in the fixtures)
    is a number, with or without a marker; today's file carries no ❌ at all (Failed is an
    empty Status cell), so the marker forms above come from the shared tables' convention."""
    real = BenchmarksDoc.read(FIXTURES / "slm-lab" / "BENCHMARKS.md")
    rows = real.result_rows()
    assert len(rows) == 292
    for row in rows:
        float(split_ma(row.ma)[1].replace(",", ""))
    assert "❌" not in real.render()
