"""Stopping the runs the journals record (``snakemake cancel``).

Besides this, the runner stops only a run that cannot start (no fleet, no offers), which costs
nothing while it waits; stopping the pipeline never stops a remote run."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.errors import BenchError
from slm_bench.runners.dstack.cli import DstackCli, DstackCliError
from slm_bench.runners.dstack.journal import journal_lock, read_journal


def cancel_recorded_runs(journal_paths: Iterable[Path], dstack_bin: str | None = None) -> list[str]:
    """Stop every run the journals record (``dstack stop -y NAME``); names the server no longer
    knows are skipped. Returns the names a stop was sent to. Journals are marked ``cancelled``
    so a later pipeline run submits afresh instead of re-attaching to a stopped run.
    ``dstack_bin`` defaults to the one each journal's runner used."""
    stopped: list[str] = []
    for path in journal_paths:
        # Held across read, stop and write: a runner saving a relaunch meanwhile waits, then
        # sees the cancelled marks (DstackRunner._save) instead of overwriting them.
        with journal_lock(path):
            journal = read_journal(Path(path))
            if not journal:
                continue
            cli = DstackCli(dstack_bin or journal.get("dstack_bin") or "dstack")
            entries = list(journal.get("previous", [])) + list(journal.get("attempts", []))
            for entry in entries:
                if entry.get("state") in ("done", "failed", "terminated", "cancelled"):
                    continue
                try:
                    known = cli.stop(entry["name"])
                except DstackCliError as error:
                    raise BenchError(
                        f"{path}: cannot stop dstack run {entry['name']}: {error}"
                    ) from None
                if known:
                    stopped.append(entry["name"])
                entry["state"] = "cancelled"
            write_json(Path(path), journal)
    return stopped


def cancel_cells(cells: Iterable[tuple[str, str]], log, results: str | Path = "results") -> None:
    """The ``cancel`` target: stop every run the cells' journals record, and say which."""
    journals = [Path(results) / env / algo / "journal.json" for env, algo in cells]
    stopped = cancel_recorded_runs([path for path in journals if path.is_file()])
    log(f"stopped {len(stopped)} run(s): {', '.join(stopped) or 'none'}")
