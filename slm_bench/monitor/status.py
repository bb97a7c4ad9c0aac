"""Where each cell stands: planned, submitted, running, done (with its score) or failed (why).

Built from files the pipeline already keeps (the run journal, the run marker, metrics.json,
row.json, stats.json when ``stats`` made one for the same run, and the failure record) plus, for
remote runs, one ``dstack ps -a --json`` call for the whole table. One unreadable file makes its
own cell show the problem, never the whole table fail. With the dstack runner a second part gives
the per-hour cost of the planned runs against SLM-Lab's own choice of hardware.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.config_model import BenchConfig, RunnerKind
from slm_bench.errors import BenchError
from slm_bench.formats.logs import strip_ansi
from slm_bench.formats.status_rule import status_label
from slm_bench.runners.dstack import (
    CANCEL_COMMAND,
    DstackCli,
    DstackCliError,
    RunState,
    index_runs,
    read_journal,
    waiting_reason,
)
from slm_bench.runners.progress import human_duration, read_progress
from slm_bench.slurm.jobs import slurm_report
from slm_bench.statistics.never_learned import cell_flag, note_of
from slm_bench.trust.failures import read_failure

STATES = ("planned", "submitted", "running", "done", "failed")
ACTIVE = ("submitted", "running")
STATUS_FILE = "results/status.txt"
PARTIAL_LOG = "train.log.partial"  # a running cell's log so far (run_cell renames it when done)
# `dstack logs` of at most this many running remote cells per status call (one call each).
MAX_REMOTE_LOGS = 20
_LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) \|")
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


def _new_row(cell: str) -> dict:
    return {
        "cell": cell,
        "state": "planned",
        "dstack": None,
        "runs": [],
        "cost": None,
        "score": None,
        "status": None,
        "reason": None,
        "data_folder": None,
        "progress": None,
        "never_learned": None,
    }


def cell_status(
    cell: str,
    journal_path: str | Path,
    marker_path: str | Path,
    metrics_path: str | Path,
    live: dict | None = None,
    row_path: str | Path | None = None,
) -> dict:
    """One row of the status table for ``cell``; an unreadable file of the cell makes it a
    failed row whose reason is that file's one-line problem.

    ``live`` is :func:`live_statuses` (None when the runner is local or dstack is not asked):
    a remote run's status comes from it when it lists the run, else from the journal's last
    poll. ``row_path`` defaults to ``row.json`` beside ``metrics_path``. The cell's failure
    record (``failure.json`` beside them) makes it failed with the failed stage's error line,
    unless a remote run of the cell is in flight again.
    """
    try:
        row = _cell_status(cell, journal_path, marker_path, metrics_path, live or {}, row_path)
    except BenchError as error:
        row = {**_new_row(cell), "state": "failed", "reason": str(error)}
        return row
    failure = read_failure(Path(marker_path).parent)
    if failure is not None and row["state"] not in ACTIVE:
        row["state"] = "failed"
        row["reason"] = f"{failure.get('rule', '?')}: {failure.get('error', '')}"
    return row


def _cell_status(cell, journal_path, marker_path, metrics_path, live, row_path) -> dict:
    journal = read_journal(Path(journal_path))
    attempts = [a for a in journal.get("attempts", []) if isinstance(a, dict) and a.get("name")]
    runs = []
    for attempt in attempts:
        known = live.get(attempt["name"])
        recorded = attempt.get("run") or {}
        same = known is not None and (not recorded.get("id") or known.get("id") == recorded["id"])
        runs.append(known if same else {"name": attempt["name"], **recorded})
    row = _new_row(cell)
    row["runs"] = [r["name"] for r in runs]
    row["cost"] = round(sum(float(r.get("cost") or 0.0) for r in runs), 4) if runs else None

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
        # Why a done cell's MA is low: "1 of 4 sessions never learned" (stats.json, same run).
        row["never_learned"] = cell_flag(Path(marker_path).parent)
        row["reason"] = note_of(row["never_learned"]) or None
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
    elif attempt_state == "failed" and last.get("problem"):
        row["state"], row["reason"] = "failed", last["problem"]
    else:
        row["state"] = _DSTACK_STATE.get(row["dstack"], "submitted")
    state = RunState.from_dict({"name": last["name"], **last})
    if row["state"] == "failed":
        row["reason"] = row["reason"] or last.get("submit_error") or state.reasons() or state.status
    else:
        row["reason"] = waiting_reason(state) or None  # e.g. "no capacity: Failed to ..."
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
    lines += [f"  {row['progress']}" for row in rows if row.get("progress")]
    lines.append(f"{len(rows)} cells: {summary or 'none'}; cost ${total:.2f}")
    return "\n".join(lines) + "\n"


# -- runs no cell waits for -------------------------------------------------------------------

ALIVE = ("pending", "submitted", "provisioning", "running")
JOURNAL_ENDED = ("done", "failed", "terminated", "cancelled")


def orphan_runs(cell: str, journal_path: str | Path, live: dict) -> list[str]:
    """The cell's recorded runs that the server lists as alive but the cell does not wait for:
    earlier attempts, other work's attempts, or a last attempt the journal records as ended
    (e.g. a stopped run that dstack's retry put back to pending). One line each."""
    try:
        journal = read_journal(Path(journal_path))
    except BenchError:
        return []  # the cell's own row shows the problem
    entries = journal.get("previous", []) + journal.get("attempts", [])
    entries = [a for a in entries if isinstance(a, dict) and a.get("name")]
    last = journal.get("attempts", [])[-1] if journal.get("attempts") else None
    waited = last if isinstance(last, dict) and last.get("state") not in JOURNAL_ENDED else None
    lines = []
    for entry in entries:
        known = live.get(entry["name"])
        recorded_id = (entry.get("run") or {}).get("id")
        if known is None or known.get("status") not in ALIVE or entry is waited:
            continue
        if recorded_id and known.get("id") != recorded_id:
            continue  # another run that took the name: not this cell's
        lines.append(
            f"{entry['name']} ({cell}, {known['status']}; the journal says"
            f" {entry.get('state', '?')})"
        )
    return lines


def render_orphans(lines: list[str]) -> str:
    """The status report's warning about alive runs that no cell waits for, and what to do."""
    if not lines:
        return ""
    runs = "".join(f"  {line}\n" for line in lines)
    return (
        f"WARNING: {len(lines)} dstack run(s) alive on the server that no cell waits for (each"
        " can start and be billed beside its cell's own run):\n"
        f"{runs}stop them: {CANCEL_COMMAND} (stops every recorded run the server has not"
        " finished), or dstack stop -y NAME for one\n"
    )


# -- progress of running cells ---------------------------------------------------------------


def _log_times(path: Path) -> list[datetime]:
    """The times of the log's first and last records (from the log's own clock)."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8192).decode(errors="replace")
        handle.seek(max(size - 65536, 0))
        tail = handle.read().decode(errors="replace")
    times = []
    for text in (head, tail):
        for line in text.splitlines():
            if match := _LOG_TIME.match(strip_ansi(line)):
                times.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    return [min(times), max(times)] if times else []


def progress_text(cell, log_path: Path) -> str:
    """The cell's progress line from its log so far: session k of n, frame N of max_frame and
    the ETA at the rate from the log's first record to its last (both on the clock of the
    machine that trains, so a remote box's time zone does not matter)."""
    times = _log_times(log_path)
    elapsed = (times[1] - times[0]).total_seconds() if times else 0.0
    return read_progress(log_path).line(
        cell.key, cell.settings.max_session or 1, cell.settings.max_frame or 0, elapsed
    )


def add_progress(row: dict, cell, cell_dir: Path) -> dict:
    """A cell whose run is still writing its log (``train.log.partial``, no run marker yet)
    is running: its row gets the progress line and how long ago the log last changed (a
    killed run's log stops changing)."""
    partial = Path(cell_dir) / PARTIAL_LOG
    if row["state"] not in ("planned", "running") or not partial.is_file():
        return row
    try:
        line = progress_text(cell, partial)
        idle_s = time.time() - partial.stat().st_mtime
    except OSError:
        return row
    row["state"] = "running"
    row["progress"] = f"{line} | log updated {human_duration(idle_s)} ago"
    return row


def add_remote_progress(row: dict, cell, dstack_bin: str) -> dict:
    """A running remote cell's progress line, from its run's log so far (``dstack logs``)."""
    if row["state"] != "running" or not row["runs"]:
        return row
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "remote.log"
        try:
            DstackCli(dstack_bin, timeout_s=60).logs(row["runs"][-1], log)
            row["progress"] = progress_text(cell, log)
        except (DstackCliError, OSError):
            pass  # the table still shows the run's state
    return row


# -- the pipeline's `status` target ----------------------------------------------------------


def _dstack_sources(config: BenchConfig):
    from slm_bench.config_model import plain
    from slm_bench.runners.dstack import Sources, validate_options

    opts = validate_options(plain(config.dstack), config.source)
    checkout = config.checkout.root if config.checkout else None
    pipeline = {"checkout": checkout, "spec_root": config.spec_dir, "source": config.source}
    return opts, Sources.from_options(opts, pipeline)


def cost_report(matrix, config: BenchConfig) -> str:
    """The per-hour cost of the matrix's remote runs as planned, against SLM-Lab's choice."""
    from slm_bench.formats.spec import resolve_spec
    from slm_bench.runners.dstack import cell_cost, render_costs

    opts, sources = _dstack_sources(config)
    costs = []
    for cell in matrix.cells.values():
        try:
            body = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
        except (BenchError, OSError):
            body = None
        group = matrix.envs[cell.env].phase or cell.env_id
        costs.append(cell_cost(cell.key, group, cell.env_id, body, opts, sources))
    return render_costs(costs)


def status_report(
    matrix, config: BenchConfig, results: str | Path = "results", on_slurm: bool = False
) -> str:
    """The status table for every cell of ``matrix`` (with dstack, the cost plan; on the Slurm
    route, each cell's Slurm job)."""
    live, note = None, ""
    if config.runner is RunnerKind.DSTACK:
        try:
            live = live_statuses(config.dstack.dstack_bin)
        except BenchError as error:
            note = f"{error}; states are the journals' last polls\n"
    rows: list[dict] = []
    orphans: list[str] = []
    remote_logs = MAX_REMOTE_LOGS if live is not None else 0
    for cell in matrix.cells.values():
        cell_dir = Path(results) / cell.env / cell.algo
        row = cell_status(
            cell.key,
            cell_dir / "journal.json",
            cell_dir / "run.json",
            cell_dir / "metrics.json",
            live,
        )
        if live is not None:
            orphans += orphan_runs(cell.key, cell_dir / "journal.json", live)
        row = add_progress(row, cell, cell_dir)
        if remote_logs and row["state"] == "running" and not row["progress"]:
            remote_logs -= 1
            row = add_remote_progress(row, cell, config.dstack.dstack_bin)
        rows.append(row)
    text = note + render_status_table(rows) + render_orphans(orphans)
    if slurm_text := slurm_report(matrix.cells, on_slurm, Path(results)):
        text += "\n" + slurm_text
    if config.runner is RunnerKind.DSTACK:
        try:
            text += "\n" + cost_report(matrix, config)
        except BenchError as error:
            text += f"\ncost plan unavailable: {error}\n"
    return text


def print_status(matrix, config: BenchConfig, log, on_slurm: bool = False) -> None:
    """The ``status`` target: print the table (and keep a copy in results/status.txt)."""
    text = status_report(matrix, config, on_slurm=on_slurm)
    log(text.rstrip("\n"))
    write_text(Path(STATUS_FILE), text)
