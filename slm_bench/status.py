"""Where each cell stands: planned, submitted, running, done (with its score) or failed.

Built from files the pipeline already keeps (the run journal, the run marker, metrics.json and
row.json) plus, for remote runs, one ``dstack ps -a --json`` call for the whole table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.runners.dstack import (
    DstackCli,
    DstackCliError,
    RunState,
    index_runs,
    read_journal,
)
from slm_bench.settings import status_label

STATES = ("planned", "submitted", "running", "done", "failed")
_DSTACK_STATE = {
    "pending": "submitted",
    "submitted": "submitted",
    "provisioning": "submitted",
    "running": "running",
    "terminating": "running",
    "done": "running",  # finished remotely; the cell is done once its log and marker are in
    "failed": "failed",
    "terminated": "failed",
}
COLUMNS = (
    ("cell", "CELL"),
    ("state", "STATE"),
    ("dstack", "DSTACK"),
    ("runs", "RUNS"),
    ("cost", "COST"),
    ("score", "MA"),
    ("status", "STATUS"),
    ("reason", "REASON"),
)


def live_statuses(dstack_bin: str = "dstack") -> dict[str, dict]:
    """Run name -> the safe summary (:class:`RunState` as a dict, no env values) of every run
    one ``dstack ps -a --json`` lists."""
    try:
        states = DstackCli(dstack_bin, timeout_s=120).ps()
    except DstackCliError as error:
        raise BenchError(f"dstack: cannot list runs for the status table: {error}") from None
    return {name: state.to_dict() for name, state in index_runs(states).items()}


def _read_json(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise BenchError(f"{path}: unreadable JSON ({error})") from None
    return data if isinstance(data, dict) else None


def cell_status(
    cell: str,
    journal_path: str | Path,
    marker_path: str | Path,
    metrics_path: str | Path,
    live: dict | None = None,
    row_path: str | Path | None = None,
) -> dict:
    """One row of the status table for ``cell``.

    ``live`` is :func:`live_statuses` (None when the runner is local or dstack is not asked):
    a remote run's status comes from it when it lists the run, else from the journal's last
    poll. ``row_path`` defaults to ``row.json`` beside ``metrics_path``.
    """
    live = live or {}
    journal = read_journal(Path(journal_path))
    attempts = [a for a in journal.get("attempts", []) if isinstance(a, dict) and a.get("name")]
    runs = []
    for attempt in attempts:
        known = live.get(attempt["name"])
        same = known is not None and (
            not attempt.get("run", {}).get("id") or known.get("id") == attempt["run"]["id"]
        )
        runs.append(known if same else {"name": attempt["name"], **attempt.get("run", {})})
    row = {
        "cell": cell,
        "state": "planned",
        "dstack": None,
        "runs": [r["name"] for r in runs],
        "cost": round(sum(float(r.get("cost") or 0.0) for r in runs), 4) if runs else None,
        "score": None,
        "status": None,
        "reason": None,
        "data_folder": None,
    }

    marker = _read_json(Path(marker_path))
    if marker is not None:
        row["state"] = "done"
        row["data_folder"] = marker.get("data_folder")
        row["runs"] = row["runs"] or [marker.get("run_name")]
        if row["cost"] is None:
            row["cost"] = (marker.get("extra") or {}).get("cost")
        metrics = _read_json(Path(metrics_path))
        if metrics is not None:
            row["score"] = metrics.get("total_reward_ma")
        row_data = _read_json(
            Path(row_path) if row_path else Path(metrics_path).parent / "row.json"
        )
        if row_data is not None and isinstance(row_data.get("status"), str):
            row["status"] = status_label(row_data["status"])  # BENCHMARKS.md's Status column
        if runs:
            row["dstack"] = runs[-1].get("status")
        return row

    if not runs:
        return row
    last = runs[-1]
    attempt_state = attempts[-1].get("state")
    row["dstack"] = last.get("status") or attempt_state
    if attempt_state in ("submitting", "submitted") and not last.get("status"):
        row["state"] = "submitted"
    elif attempt_state == "cancelled" and not last.get("status"):
        row["state"], row["reason"] = "failed", "cancelled"
    else:
        row["state"] = _DSTACK_STATE.get(row["dstack"], "submitted")
    if row["state"] == "failed":
        state = RunState.from_dict({"name": last["name"], **last})
        row["reason"] = last.get("submit_error") or state.reasons() or row["reason"] or state.status
    return row


def _cell_text(key: str, value) -> str:
    if value is None or value == "":
        return "-"
    if key == "runs":
        return ",".join(value) if value else "-"
    if key == "cost":
        return f"${float(value):.2f}"
    if key == "score":
        return "nan" if isinstance(value, float) and math.isnan(value) else f"{float(value):.2f}"
    return str(value)


def render_status_table(rows: list[dict]) -> str:
    """A plain text table (one line per cell) and a one-line summary with the total cost."""
    table = [[title for _, title in COLUMNS]]
    table += [[_cell_text(key, row.get(key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    counts = {state: sum(1 for row in rows if row.get("state") == state) for state in STATES}
    total = sum(float(row.get("cost") or 0.0) for row in rows)
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    lines.append(f"{len(rows)} cells: {summary or 'none'}; cost ${total:.2f}")
    return "\n".join(lines) + "\n"
