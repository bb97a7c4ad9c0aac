"""Stopping the runs the journals record (``snakemake cancel``).

Besides this, the runner stops only a run that cannot start (no fleet, no offers), which costs
nothing while it waits; stopping the pipeline never stops a remote run.

What the server says decides, not the journal: an attempt the journal records as failed (its
cell gave up on it) can still be alive, e.g. a stopped run dstack's retry put back to pending
(:mod:`~slm_bench.runners.dstack.stopping`). Every recorded run the server lists as not
finished is stopped, and cancel waits until the server reports each one finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.errors import BenchError
from slm_bench.runners.dstack.cli import DstackCli, DstackCliError
from slm_bench.runners.dstack.journal import journal_lock, read_journal
from slm_bench.runners.dstack.runs import FINISHED_STATUSES, RunState, index_runs
from slm_bench.runners.dstack.stopping import StopOutcome, stop_until_ended

JOURNAL_FINISHED = ("done", "failed", "terminated", "cancelled")


def _listing(cli: DstackCli, path: Path) -> dict[str, RunState]:
    try:
        return index_runs(cli.ps())
    except DstackCliError as error:
        raise BenchError(f"{path}: cannot list dstack runs to cancel: {error}") from None


def _stop_journal(path: Path, dstack_bin: str | None, listings: dict, sent: dict) -> None:
    """Under the journal's lock: stop its runs the server lists as not finished (and those it
    does not list that the journal does not record as finished), mark the unfinished entries
    ``cancelled``. Each run a stop was sent to goes into ``sent[dstack_bin][name]`` (its id)."""
    # Held across read, stop and write: a runner saving a relaunch meanwhile waits, then sees
    # the cancelled marks (journal.save_journal) instead of overwriting them.
    with journal_lock(path):
        journal = read_journal(path)
        if not journal:
            return
        binary = dstack_bin or journal.get("dstack_bin") or "dstack"
        cli = DstackCli(binary)
        if binary not in listings:
            listings[binary] = _listing(cli, path)
        entries = list(journal.get("previous", [])) + list(journal.get("attempts", []))
        for entry in entries:
            live = listings[binary].get(entry["name"])
            alive = live.status not in FINISHED_STATUSES if live else None
            unfinished = entry.get("state") not in JOURNAL_FINISHED
            if alive or (alive is None and unfinished):
                try:
                    known = cli.stop(entry["name"])
                except DstackCliError as error:
                    raise BenchError(
                        f"{path}: cannot stop dstack run {entry['name']}: {error}"
                    ) from None
                if known:
                    sent.setdefault(binary, {})[entry["name"]] = live.id if live else None
            if unfinished:
                entry["state"] = "cancelled"
        write_json(path, journal)


def cancel_recorded_runs(
    journal_paths: Iterable[Path], dstack_bin: str | None = None, wait_s: float | None = None
) -> list[StopOutcome]:
    """Stop every run the journals record that the server has not finished, whatever the
    journal says, then wait until the server reports each one finished (stopping again any
    that comes back). Names the server does not know are skipped. Journals' unfinished entries
    are marked ``cancelled`` so a later pipeline run submits afresh instead of re-attaching.
    ``dstack_bin`` defaults to the one each journal's runner used. Returns the outcome of each
    run a stop was sent to."""
    listings: dict[str, dict[str, RunState]] = {}
    sent: dict[str, dict[str, str | None]] = {}
    for path in journal_paths:
        _stop_journal(Path(path), dstack_bin, listings, sent)
    outcomes: list[StopOutcome] = []
    for binary, targets in sent.items():  # every stop is sent before any wait
        cli = DstackCli(binary)

        def runs(_after: float, cli: DstackCli = cli) -> list[RunState]:
            return cli.ps()

        outcomes += stop_until_ended(cli, runs, targets, already_stopped=True, wait_s=wait_s)
    return outcomes


def cancel_cells(
    cells: Iterable[tuple[str, str]], log: Callable[[str], None], results: str | Path = "results"
) -> None:
    """The ``cancel`` target: stop every run the cells' journals record that is not finished
    on the server, say which, and fail when one did not end."""
    journals = [Path(results) / env / algo / "journal.json" for env, algo in cells]
    outcomes = cancel_recorded_runs([path for path in journals if path.is_file()])
    names = ", ".join(o.name for o in outcomes) or "none"
    lines = [f"stopped {len(outcomes)} run(s): {names}"]
    lines += [o.text(f"dstack run {o.name}") for o in outcomes if o.came_back or not o.ended]
    if outcomes and all(o.ended for o in outcomes):
        lines.append("the server reports every one of them finished")
    log("\n".join(lines))
    left = [o for o in outcomes if not o.ended]
    if left:
        raise BenchError(
            f"cancel: {len(left)} dstack run(s) did not end after the stop: "
            + "; ".join(o.text(f"dstack run {o.name}") for o in left)
        )
