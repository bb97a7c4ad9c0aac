"""A failed stage leaves a record beside its cell, so a failure is never hidden by the next run.

Snakemake deletes a failed job's outputs, which makes a failed cell look like a planned one, and
it does not rerun a missing intermediate file when the requested target is up to date. So
``job_context`` writes two things in the job's folder (a cell's ``results/{env}/{algo}/``, an env's
``results/{env}/``, a phase's ``results/phases/{phase}/``, else ``results/``):

- ``failure.json``: the current failure (rule, one-line error, time), removed when that same
  rule later succeeds; ``status`` reads it.
- ``failures.jsonl``: every failure ever recorded, one line each, never rewritten. Its count is a
  param of the table rules, so the run after a failure plans the table again and, through it, the
  failed stage; once recovered the count stays the same and the plan is empty again.

Neither file is an output of any rule.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.durations import now_iso

RESULTS = Path("results")
FAILURE_FILE = "failure.json"
HISTORY_FILE = "failures.jsonl"


def failure_dir(env: str | None = None, algo: str | None = None, phase: str | None = None) -> Path:
    """Where a job's failure is recorded, from its wildcards."""
    if env and algo:
        return RESULTS / env / algo
    if env:
        return RESULTS / env
    if phase:
        return RESULTS / "phases" / phase
    return RESULTS


def record_failure(cell_dir: str | Path, rule: str, message: str) -> Path:
    """Write the failure record (which rule failed, its one-line error, when) and log it."""
    entry = {"rule": rule, "error": message, "time": now_iso()}
    cell_dir = Path(cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    # The history first: it is what makes the next run plan the failed stage again.
    with open(cell_dir / HISTORY_FILE, "a", encoding="utf-8") as history:
        history.write(json.dumps(entry) + "\n")
        history.flush()
        os.fsync(history.fileno())
    return write_json(cell_dir / FAILURE_FILE, entry)


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


def record_missing_staged(record_dir: str | Path, rule: str, staged: Path, table: Path) -> None:
    """Record a failure of ``rule`` if its staged table is missing beside the table.

    The staged file is only missing after its job failed or was killed, possibly with nothing
    recorded (a full disk, a SIGKILL). Called while planning, once per table: the record is
    written once, so the plan redoes the table, and its success clears the record.
    """
    if not Path(table).exists() or Path(staged).exists():
        return
    current = read_failure(record_dir)
    if current is None or current.get("rule") != rule:
        with suppress(OSError):
            record_failure(
                record_dir, rule, f"{staged}: missing beside {table} (its job failed or was killed)"
            )


def failure_count(cell_dir: str | Path, rules: frozenset[str] | None = None) -> int:
    """How many failures (of ``rules``, or of any rule) were ever recorded in ``cell_dir``.

    A line cut short by a kill or a full disk still counts: the count only has to grow.
    """
    try:
        lines = (Path(cell_dir) / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError):
        return -1  # unreadable: still differs from any count a table was built with
    count = 0
    for line in filter(None, map(str.strip, lines)):
        try:
            rule = json.loads(line).get("rule")
        except (ValueError, AttributeError):
            rule = None
        count += rules is None or rule is None or rule in rules
    return count


def failure_counts(dirs: list[str | Path], rules: frozenset[str] | None = None) -> dict[str, int]:
    """``{dir: count}`` for the dirs with recorded failures (the table rules' param)."""
    counts = {str(d): failure_count(d, rules) for d in dirs}
    return {d: n for d, n in sorted(counts.items()) if n}
