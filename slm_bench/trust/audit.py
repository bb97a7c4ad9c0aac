"""The spec audit: every row's spec against its row's Settings, reported, never fatal.

A row's Settings are its table's Settings line, with max_frame replaced by the row's frame
budget when the file documents one (SLM-Lab's SAC/CrossQ budgets below the PPO max_frame): the
audit lists rows that run on a budget, and rows whose spec disagrees with their Settings or
trains on another env, so a maintainer can decide. It also shows where a hand-set Status
differs from the computed rule, and the cells whose sessions never learned (from their
stats.json), since their MA is SLM-Lab's mean over sessions some of which stayed at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.formats.baseline import random_return
from slm_bench.formats.benchmarks_md import FORM_GROUP
from slm_bench.formats.settings import Range, format_number, parse_target
from slm_bench.formats.spec import audit_spec, max_frame_is_hardcoded, resolve_spec
from slm_bench.formats.status_rule import computed_status, status_label
from slm_bench.statistics.never_learned import cell_flag, note_of

COLUMNS = ("Env", "Algorithm", "SPEC_FILE", "SPEC_NAME", "Verdict", "Detail")
# Most actionable first.
VERDICT_ORDER = {"mismatch": 0, "error": 1, "warning": 2, "not planned": 3, "budget": 4, "ok": 5}


@dataclass(frozen=True)
class AuditRow:
    env_id: str
    algorithm: str
    spec_file: str
    spec_name: str
    verdict: str  # ok | budget | warning | mismatch | error | not planned
    detail: str = ""


def _budget_note(matrix, cell) -> str | None:
    """How a row's max_frame differs from its table's Settings line (a documented budget)."""
    entry = matrix.envs.get(cell.env)
    if entry is None or cell.settings.max_frame == entry.settings.max_frame:
        return None
    limit = entry.settings.max_frame
    shown = limit if isinstance(limit, Range) else format_number(limit)
    budget = format_number(cell.settings.max_frame)
    return f"runs at its documented frame budget: -s max_frame={budget} (Settings line: {shown})"


def audit_matrix(matrix, policy: str) -> list[AuditRow]:
    rows = []
    for cell in matrix.cells.values():
        source = f"{cell.spec_file}: {cell.spec_name}"
        budget = _budget_note(matrix, cell)
        try:
            body = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
            hardcoded = max_frame_is_hardcoded(cell.spec_path, cell.spec_name, cell.sets)
            warnings = audit_spec(
                body, cell.settings, hardcoded, policy=policy, source=source, env_id=cell.env_id
            )
            verdict = "warning" if warnings else "budget" if budget else "ok"
            detail = "; ".join([*([budget] if budget else []), *warnings])
        except BenchError as error:
            verdict = "mismatch" if "Settings line says" in str(error) else "error"
            detail = "; ".join([str(error), *([budget] if budget else [])])
        rows.append(
            AuditRow(cell.env_id, cell.label, cell.spec_file, cell.spec_name, verdict, detail)
        )
    for skipped in matrix.skipped:
        rows.append(
            AuditRow(
                skipped.env_id,
                skipped.algorithm,
                skipped.spec_file,
                skipped.spec_name,
                "not planned",
                skipped.reason,
            )
        )
    return rows


def status_differences(
    doc, baseline_path=None, rule: str = "legend"
) -> list[tuple[str, str, str, str, str, str]]:
    """(env, algorithm, MA, target, hand-set status, computed status) for every row whose
    hand-set Status (read with the file's own Legend symbols) differs from the computed rule."""
    legend = doc.legend()
    differences = []
    for section in doc.env_sections():
        target = parse_target(section.target) if section.target else None
        if target is None or section.form == FORM_GROUP:  # shared tables have no Status column
            continue
        baseline = random_return(section.env_id, baseline_path)
        for row in section.rows:
            try:
                score = float(row.ma)
            except ValueError:
                continue
            computed = computed_status(score, target, baseline, rule)
            hand_set = legend.canonical(row.status)
            if hand_set != computed:
                differences.append(
                    (
                        section.env_id,
                        row.algorithm,
                        row.ma,
                        target.text,
                        _label(hand_set),
                        status_label(computed),
                    )
                )
    return differences


def _label(symbol: str) -> str:
    """A hand-set status as a word; a symbol the legend does not define is shown as typed."""
    try:
        return status_label(symbol)
    except BenchError:
        return symbol


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def never_learned_rows(matrix, results: str | Path = "results") -> list[tuple[str, str, str]]:
    """(env, algorithm, what) for every cell: its sessions that never learned and why, that all
    learned, or that it was not checked (no stats.json for its current run)."""
    rows = []
    for cell in matrix.cells.values():
        try:
            flagged = cell_flag(Path(results) / cell.env / cell.algo)
        except BenchError as error:
            rows.append((cell.env_id, cell.label, f"not checked: {error}"))
            continue
        if flagged is None:
            what = "not checked: no stats.json for its current run (`snakemake stats`)"
        elif note_of(flagged):
            why = "; ".join(
                f"s{s['session']}: {', '.join(s['reasons'])}" for s in flagged["sessions"]
            )
            what = f"{note_of(flagged)} ({why})"
        else:
            what = f"all {flagged.get('of')} sessions learned"
        unchecked = (flagged or {}).get("unchecked") or []
        rows.append((cell.env_id, cell.label, "; ".join([what, *unchecked])))
    return rows


def render_audit(
    rows: list[AuditRow],
    differences: list[tuple] | None = None,
    sessions: list[tuple[str, str, str]] | None = None,
) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    summary = ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items()))
    lines = ["# Spec audit", "", f"{len(rows)} rows: {summary}.", ""]
    problems = [row for row in rows if row.verdict != "ok"]
    lines += _table(
        COLUMNS,
        [
            (r.env_id, r.algorithm, r.spec_file, r.spec_name, r.verdict, r.detail)
            for r in sorted(
                problems, key=lambda r: (VERDICT_ORDER[r.verdict], r.env_id, r.algorithm)
            )
        ],
    )
    if differences is not None:
        lines += ["", "## Status: hand-set vs computed", ""]
        lines += [
            f"{len(differences)} rows differ from the computed rule "
            "(see docs/configuration.md, Status).",
            "",
        ]
        header = ("Env", "Algorithm", "MA", "Target", "Hand-set", "Computed")
        lines += _table(header, differences)
    if sessions is not None:
        flagged = sum(1 for row in sessions if "never learned" in row[2])
        lines += ["", "## Sessions that never learned", ""]
        lines += [f"{flagged} of {len(sessions)} cells have sessions that never learned.", ""]
        lines += _table(("Env", "Algorithm", "Sessions"), sessions)
    return "\n".join(lines) + "\n"
