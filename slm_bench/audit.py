"""The spec audit: every row's spec against its env's Settings line, reported, never fatal.

SLM-Lab's own BENCHMARKS.md has rows whose specs disagree with their Settings line (e.g. SAC
budgets below the PPO max_frame): the audit lists them so a maintainer can decide, and shows
where a hand-set Status differs from the computed rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from slm_bench.baseline import random_return
from slm_bench.errors import BenchError
from slm_bench.settings import parse_target, status, status_label
from slm_bench.spec import audit_spec, max_frame_is_hardcoded, resolve_spec

COLUMNS = ("Env", "Algorithm", "SPEC_FILE", "SPEC_NAME", "Verdict", "Detail")
# Most actionable first.
VERDICT_ORDER = {"mismatch": 0, "error": 1, "warning": 2, "not planned": 3, "ok": 4}


@dataclass(frozen=True)
class AuditRow:
    env_id: str
    algorithm: str
    spec_file: str
    spec_name: str
    verdict: str  # ok | warning | mismatch | error | not planned
    detail: str = ""


def audit_matrix(matrix, policy: str) -> list[AuditRow]:
    rows = []
    for cell in matrix.cells.values():
        source = f"{cell.spec_file}: {cell.spec_name}"
        try:
            body = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
            hardcoded = max_frame_is_hardcoded(cell.spec_path, cell.spec_name, cell.sets)
            warnings = audit_spec(body, cell.settings, hardcoded, policy=policy, source=source)
            verdict, detail = ("warning", "; ".join(warnings)) if warnings else ("ok", "")
        except BenchError as error:
            verdict = "mismatch" if "Settings line says" in str(error) else "error"
            detail = str(error)
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


def status_differences(doc, baseline_path=None) -> list[tuple[str, str, str, str, str]]:
    """(env, algorithm, MA, hand-set status, computed status) where the two disagree."""
    differences = []
    for section in doc.env_sections():
        target = parse_target(section.target) if section.target else None
        if target is None:
            continue
        baseline = random_return(section.env_id, baseline_path)
        for row in section.rows:
            try:
                score = float(row.ma)
            except ValueError:
                continue
            computed = status(score, target, baseline)
            if row.status.strip() != computed:
                differences.append(
                    (
                        section.env_id,
                        row.algorithm,
                        row.ma,
                        status_label(row.status.strip()) if row.status.strip() else "Failed",
                        status_label(computed),
                    )
                )
    return differences


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render_audit(rows: list[AuditRow], differences: list[tuple] | None = None) -> str:
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
        lines += [f"{len(differences)} rows differ from the computed rule (see the README).", ""]
        lines += _table(("Env", "Algorithm", "MA", "Hand-set", "Computed"), differences)
    return "\n".join(lines) + "\n"
