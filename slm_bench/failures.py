"""A failed stage leaves a record beside its cell, so a failure is never hidden by the next run.

Snakemake deletes a failed job's outputs, which makes a failed cell look like a planned one.
``run_step`` therefore writes ``failure.json`` in the cell's folder (``results/{env}/{algo}/``)
when a stage fails, and removes it when that same stage later succeeds; ``status`` reads it.
The record is not an output of any rule, so it never changes what Snakemake plans.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from slm_bench.atomic import write_json

FAILURE_FILE = "failure.json"


def record_failure(cell_dir: str | Path, rule: str, message: str) -> Path:
    """Write the cell's failure record: which rule failed, its one-line error, and when."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return write_json(Path(cell_dir) / FAILURE_FILE, {"rule": rule, "error": message, "time": when})


def clear_failure(cell_dir: str | Path, rule: str) -> None:
    """Remove the record if it was written by ``rule`` (a later stage's failure stays)."""
    record = read_failure(cell_dir)
    if record is not None and record.get("rule") == rule:
        (Path(cell_dir) / FAILURE_FILE).unlink(missing_ok=True)


def read_failure(cell_dir: str | Path) -> dict | None:
    """The cell's failure record, or None; an unreadable record still says the cell failed."""
    path = Path(cell_dir) / FAILURE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return {"rule": "?", "error": f"{path}: unreadable failure record ({error})", "time": ""}
    return data if isinstance(data, dict) else {"rule": "?", "error": str(data), "time": ""}
