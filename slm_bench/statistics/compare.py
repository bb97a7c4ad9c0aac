"""New results against a reference table: per cell the new MA, the reference MA, the difference and
a verdict (improved / within noise / regressed), and an opt-in gate for CI.

The reference is a BENCHMARKS.md (the checkout's own by default, or any earlier one) or an earlier
``results/`` folder. A BENCHMARKS.md gives one number per row; an earlier results folder gives
its sessions too (``stats.json``), so the difference then has a two-sample confidence interval.

The verdict needs both signs that a change is real:

- the 95% bootstrap CI of the difference (new mean minus reference) excludes 0: with a single
  reference number that is "the reference lies outside the CI of the new sessions' mean";
- the difference is at least ``min_effect`` of the env's span from a random policy to the target
  (``min_effect * |target - random|``; without a target, of ``max(|reference|, 1)``), so a
  tight CI around a trivial change (499.5 vs 498.9 on CartPole) is not called a regression.

Otherwise the change is within noise. A cell with no matching reference row is "no reference".
"""

from __future__ import annotations

import math
from pathlib import Path

from slm_bench.atomic import write_json, write_text
from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import load_json
from slm_bench.formats.settings import parse_target
from slm_bench.statistics.reference import ReferenceEntry, match_reference, read_reference
from slm_bench.statistics.stats import (
    CONFIDENCE,
    difference_ci,
    percentile_ci,
    pooled_mean,
    score_span,
)

IMPROVED = "improved"
WITHIN_NOISE = "within noise"
REGRESSED = "regressed"
NO_REFERENCE = "no reference"
VERDICTS = (REGRESSED, IMPROVED, WITHIN_NOISE, NO_REFERENCE)
DEFAULT_MIN_EFFECT = 0.05
_SYMBOLS = {IMPROVED: "⬆️ improved", WITHIN_NOISE: "= within noise", REGRESSED: "⬇️ regressed"}


def effect_threshold(
    min_effect: float, target_text: str | None, random_return: float | None, reference: float
) -> float:
    """The smallest difference that counts: ``min_effect`` of the random-to-target span."""
    target = parse_target(target_text) if target_text else None
    if target is not None:
        return min_effect * score_span(target, random_return)
    return min_effect * max(abs(reference), 1.0)


def compare_cell(
    stats: dict, spec_name: str, reference: ReferenceEntry | None, min_effect: float
) -> dict:
    """One cell's comparison (see the module doc for the verdict)."""
    sessions = [s["final_ma"] for s in stats["sessions"] if math.isfinite(s["final_ma"])]
    new_ma = stats["trial_ma"] if stats.get("trial_ma") is not None else stats["mean"]
    result = {
        "cell": stats["cell"],
        "env_id": stats["env_id"],
        "algorithm": stats["algorithm"],
        "spec_name": spec_name,
        "new_ma": new_ma,
        "new_ci": list(stats["mean_ci"]),
        "n_sessions": len(sessions),
        "reference_ma": None,
        "reference_row": None,
        "reference_sessions": None,
        "difference": None,
        "difference_ci": None,
        "threshold": None,
        "verdict": NO_REFERENCE,
        "basis": "no matching reference row",
    }
    if reference is None:
        return result
    difference = new_ma - reference.ma
    if reference.sessions:
        low, high = difference_ci(sessions, list(reference.sessions))
        basis = "CI of the difference of session means (both sides' sessions)"
    else:
        low, high = (bound - reference.ma for bound in percentile_ci([sessions], pooled_mean))
        basis = "reference outside/inside the CI of the new sessions' mean"
    if len(sessions) < 2:
        basis = "one session: no spread, the threshold alone decides"
    threshold = effect_threshold(
        min_effect, stats.get("target"), stats.get("random_return"), reference.ma
    )
    if low > 0 and difference >= threshold:
        verdict = IMPROVED
    elif high < 0 and -difference >= threshold:
        verdict = REGRESSED
    else:
        verdict = WITHIN_NOISE
    result.update(
        reference_ma=reference.ma,
        reference_row=f"{reference.algorithm} {reference.spec_name} ({reference.source})".strip(),
        reference_sessions=list(reference.sessions) or None,
        difference=difference,
        difference_ci=[low, high],
        threshold=threshold,
        verdict=verdict,
        basis=basis,
    )
    return result


def compare_results(
    stats_list: list[dict],
    spec_names: dict[str, str],
    reference_path: str | Path,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> dict:
    """The whole comparison: every cell's, and the count per verdict."""
    entries = read_reference(reference_path)
    cells = [
        compare_cell(
            stats,
            spec_names.get(stats["cell"], ""),
            match_reference(
                entries, stats["env_id"], spec_names.get(stats["cell"], ""), stats["algorithm"]
            ),
            min_effect,
        )
        for stats in stats_list
    ]
    return {
        "reference": str(reference_path),
        "min_effect": min_effect,
        "confidence": CONFIDENCE,
        "counts": {v: sum(c["verdict"] == v for c in cells) for v in VERDICTS},
        "cells": cells,
    }


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def render_markdown(comparison: dict) -> str:
    """compare.md: one table, a line per cell, verdict last."""
    counts = ", ".join(f"{n} {v}" for v, n in comparison["counts"].items() if n)
    lines = [
        "# Comparison with the reference table",
        "",
        f"Reference: `{comparison['reference']}`. Verdicts: {counts or 'none'}.",
        "",
        "A change is *improved* or *regressed* only when the 95% bootstrap CI of the difference "
        f"excludes 0 **and** it is at least {comparison['min_effect']:.0%} of the way from a "
        "random policy to the target; otherwise it is *within noise*.",
        "",
        "| Env | Algorithm | New MA | 95% CI | Sessions | Reference MA | Difference "
        "| Difference CI | Verdict |",
        "|-----|-----------|--------|--------|----------|--------------|------------"
        "|---------------|---------|",
    ]
    for cell in comparison["cells"]:
        ci = cell["new_ci"]
        diff_ci = cell["difference_ci"]
        lines.append(
            f"| {cell['env_id']} | {cell['algorithm']} | {_num(cell['new_ma'])} "
            f"| [{_num(ci[0])}, {_num(ci[1])}] | {cell['n_sessions']} "
            f"| {_num(cell['reference_ma'])} | {_signed(cell['difference'])} "
            f"| {'-' if diff_ci is None else f'[{diff_ci[0]:+.2f}, {diff_ci[1]:+.2f}]'} "
            f"| {_SYMBOLS.get(cell['verdict'], cell['verdict'])} |"
        )
    return "\n".join(lines) + "\n"


def write_comparison(
    stats_paths: list[Path],
    spec_names: dict[str, str],
    reference_path: str | Path,
    min_effect: float,
    out_md: Path,
    out_json: Path,
) -> None:
    stats_list = [load_json(path) for path in stats_paths]
    comparison = compare_results(stats_list, spec_names, reference_path, min_effect)
    write_json(out_json, comparison)
    write_text(out_md, render_markdown(comparison))


def regressions(comparison: dict) -> list[dict]:
    return [cell for cell in comparison["cells"] if cell["verdict"] == REGRESSED]


def check_comparison(compare_json: Path, gate: bool, out_flag: Path, log) -> None:
    """Print the verdicts and a summary that counts the cells with no reference; with the gate
    on, fail (non-zero exit) when any cell regressed, or when no cell had a reference at all (a
    gate that compared nothing would pass on anything)."""
    comparison = load_json(compare_json)
    cells = comparison["cells"]
    for cell in cells:
        log(
            f"{cell['cell']}: {cell['verdict']} (new {_num(cell['new_ma'])}, reference "
            f"{_num(cell['reference_ma'])}, difference {_signed(cell['difference'])})"
        )
    regressed = regressions(comparison)
    missing = sum(cell["verdict"] == NO_REFERENCE for cell in cells)
    summary = (
        f"{len(regressed)} regression(s) in {len(cells) - missing} compared cell(s);"
        f" {missing} cell(s) have no reference in {comparison['reference']}"
    )
    log(summary)
    if gate and regressed:
        names = ", ".join(
            f"{c['env_id']} {c['algorithm']} {c['new_ma']:.2f} < {c['reference_ma']:.2f}"
            for c in regressed
        )
        raise BenchError(f"{compare_json}: compare_gate: {len(regressed)} regression(s): {names}")
    if gate and cells and missing == len(cells):
        raise BenchError(
            f"{compare_json}: compare_gate: none of the {len(cells)} cell(s) has a row in"
            f" {comparison['reference']}, so nothing was compared"
        )
    write_text(out_flag, f"{summary}; gate {'on' if gate else 'off'}\n")
