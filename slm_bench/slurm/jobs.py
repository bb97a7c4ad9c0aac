"""``status`` and ``cancel`` on the Slurm route: the cells' Slurm jobs, found two ways.

- A job that started wrote its cell's ``slurm.json`` (job id, node, attempt) on the node.
- A job still queued has not: the executor names each job's comment after its rule and
  wildcards (``rule_run_cell_wildcards_CartPole-v1_ppo``) and submits it from this working
  directory, so one ``squeue`` finds the live ones of this project.

States, nodes and elapsed times then come from one ``sacct`` call for all of them (slurmdbd, not
the controller), so a status costs the controller one ``squeue`` whatever the matrix size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.slurm.cluster import SlurmError, cancel, job_states, run
from slm_bench.slurm.job import JOURNAL

CLUSTER_RULES = ("run_cell", "search_cell")
# States after which a job no longer runs or waits (sacct's names; CANCELLED may read
# "CANCELLED by 0").
FINISHED = ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE")  # fmt: skip
COLUMNS = ("cell", "rule", "job", "attempt", "state", "node", "elapsed")
# The matrix's cells as (env, algo) pairs: the caller passes ``Matrix.cells``, so this part
# needs nothing of the matrix part above it.
Cells = Iterable[tuple[str, str]]


def recorded(cells: Iterable[tuple[str, str]], results: Path) -> dict[str, dict]:
    """``{env/algo: slurm.json}`` of the cells whose job started on a node."""
    records = {}
    for env, algo in cells:
        path = results / env / algo / JOURNAL
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as error:
            record = {"job_id": "?", "error": f"{path}: unreadable ({error})"}
        records[f"{env}/{algo}"] = record if isinstance(record, dict) else {"job_id": "?"}
    return records


def queued(cells: Iterable[tuple[str, str]], workdir: Path, timeout_s: float = 30) -> dict:
    """``{env/algo: {job_id, rule, state}}`` of this project's jobs the controller still lists."""
    comments = {
        f"rule_{rule}_wildcards_{env}_{algo}": (f"{env}/{algo}", rule)
        for env, algo in cells
        for rule in CLUSTER_RULES
    }
    out = run(["squeue", "-h", "-o", "%i|%k|%T|%Z"], timeout_s)
    live = {}
    here = workdir.resolve()
    for line in out.splitlines():
        job_id, comment, state, folder = (line.split("|") + ["", "", "", ""])[:4]
        if comment in comments and Path(folder).resolve() == here:
            key, rule = comments[comment]
            live[key] = {"job_id": job_id, "rule": rule, "state": state}
    return live


def job_rows(cells: Cells, results: Path, workdir: Path) -> list[dict]:
    """One row per cell with a Slurm job: its job id, attempt, state, node and elapsed time."""
    cells = list(cells)
    jobs = recorded(cells, results)
    for key, live in queued(cells, workdir).items():
        if jobs.get(key, {}).get("job_id") != live["job_id"]:
            jobs[key] = {**live, "attempt": "-", "node": None}
    states = job_states(sorted({str(j["job_id"]) for j in jobs.values() if j.get("job_id")}))
    rows = []
    for key, job in sorted(jobs.items()):
        state = states.get(str(job.get("job_id")), {})
        rows.append({
            "cell": key,
            "rule": job.get("rule", "?"),
            "job": str(job.get("job_id")),
            "attempt": str(job.get("attempt", "-")),
            "state": state.get("State") or job.get("state") or job.get("error") or "unknown",
            "node": state.get("NodeList") or job.get("node") or "-",
            "elapsed": state.get("Elapsed") or "-",
        })  # fmt: skip
    return rows


def render(rows: list[dict]) -> str:
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in COLUMNS).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def slurm_report(
    cells: Cells, on_slurm: bool, results: Path = Path("results"), workdir: Path = Path(".")
) -> str:
    """The Slurm part of ``status`` ("" off the Slurm route when no cell ran as a Slurm job)."""
    cells = list(cells)
    if not on_slurm and not recorded(cells, results):
        return ""
    try:
        rows = job_rows(cells, results, workdir)
    except SlurmError as error:
        return f"Slurm jobs: unavailable ({error})\n"
    return "Slurm jobs:\n" + (render(rows) if rows else "none\n")


def cancel_jobs(
    cells: Cells, on_slurm: bool, log: Callable[[str], None], results: Path = Path("results")
) -> None:
    """The ``cancel`` target on the Slurm route: scancel every job of this project that still
    runs or waits, and say which, one line per cell."""
    workdir = Path(".")
    cells = list(cells)
    if not on_slurm and not recorded(cells, results):
        return
    try:
        rows = job_rows(cells, results, workdir)
    except SlurmError as error:
        raise BenchError(f"cancel: cannot list the Slurm jobs: {error}") from None
    active = [row for row in rows if not row["state"].startswith(FINISHED)]
    try:
        cancel([row["job"] for row in active])
    except SlurmError as error:
        raise BenchError(f"cancel: {error}") from None
    for row in active:
        log(f"[{row['cell']}] cancelled Slurm job {row['job']} ({row['state']})")
    log(f"cancelled {len(active)} Slurm job(s)")
