"""What watching remote runs costs: dstack CLI calls per run per hour, and this process's CPU.

Runners poll ``dstack ps -a --json`` every poll interval, through a listing shared by all
runner processes (SharedListing: one CLI call per interval however many runs are in flight).

1. Calls per run per hour at the default settings, computed from the poll schedule (one
   ``ps`` before submitting to pick a free name, ``apply``, the early polls after a submission
   (2, 4, 8 ... s, so a run that cannot start fails within a minute), one ``ps`` per interval
   plus the call's own duration, one ``logs``), and measured against the stand-in CLI
   (tests/standins/dstack) with the interval shortened: the measured period (interval + call
   overhead) scaled back to the default interval.
2. CPU while 10 runs are in flight against the stand-in (10 runners in threads, as 10
   Snakemake jobs would poll): this process's own CPU (time.process_time) as a fraction of one
   core, measured, and scaled to the default interval by CPU per runner poll; plus the CPU of
   the CLI processes it started (RUSAGE_CHILDREN).
3. With ``--real`` (needs the dstack venv, see tests/dstack_server.py): CPU and wall time of one
   real ``dstack ps -a --json`` against a local server: what the CLI calls cost at the default.

Usage: python bench/dstack_polling.py [--runs 10] [--interval 0.2] [--duration 8] [--real]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from standins import StandinDstack  # noqa: E402

from slm_bench.runners import RunRequest  # noqa: E402
from slm_bench.runners.dstack import DstackRunner, SharedListing, validate_options  # noqa: E402
from slm_bench.runners.dstack.cell_run import FIRST_POLL_S  # noqa: E402

DEFAULTS = validate_options({})
DEFAULT_INTERVAL = float(DEFAULTS["poll_interval_s"])


def early_polls(interval_s: float) -> int:
    """Polls after a submission before the interval is reached (2, 4, 8 ... s)."""
    count, delay = 0, FIRST_POLL_S
    while delay < interval_s:
        count, delay = count + 1, delay * 2
    return count


FIXED_CALLS = 3 + early_polls(DEFAULT_INTERVAL)  # ps (free name), apply, logs, early polls
LOG = (
    "2026-01-01 00:00:00 | INFO | PID:1 | cli:run | SLM-Lab: Running {SPEC_FILE} {SPEC_NAME}"
    " train with 4 sessions | output: data/{name}_2026_01_01_000000/{name}_t0\n"
    "2026-01-01 01:00:00 | INFO | PID:1 | analysis:analyze_trial | trial_metrics:"
    " frame:2.00e+05 | total_reward_ma:498.94\n"
)


def computed_calls_per_hour(
    run_hours: float, interval_s: float, call_s: float, in_flight: int = 1
) -> float:
    """CLI calls per run per hour: the shared polls split among the runs in flight, plus each
    run's fixed calls."""
    polls = run_hours * 3600 / (interval_s + call_s) / in_flight
    return (polls + FIXED_CALLS) / run_hours


class _CountingListing(SharedListing):
    """Counts runner polls (listing reads), shared or not."""

    reads = 0
    lock = threading.Lock()

    def runs(self, not_before: float = 0.0, max_age_s: float | None = None):
        with _CountingListing.lock:
            _CountingListing.reads += 1
        return super().runs(not_before, max_age_s)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _request(root: Path, index: int) -> RunRequest:
    cell = root / f"cell{index}"
    return RunRequest(
        spec_file="specs/ppo_classic.yaml",
        spec_name=f"ppo_bench_{index}",
        sets={},
        workdir=cell / "work",
        log_path=cell / "train.log.partial",
        journal_path=cell / "journal.json",
        time_limit_s=6 * 3600,
        cell=f"bench/{index}",
        fingerprint="bench",
    )


def run_in_flight(n_runs: int, interval_s: float, duration_s: float) -> dict:
    """``n_runs`` runners in threads, each polling a stand-in run that runs ``duration_s``."""
    import os

    root = Path(tempfile.mkdtemp(prefix="dstack-polling-"))
    tempfile.tempdir = str(root)  # the runners' shared listing cache goes there too
    stand = StandinDstack(root)
    stand.scenario(
        {
            "default": [
                {"status": "provisioning", "seconds": 0.5},
                {"status": "running", "seconds": duration_s, "cost": 0.1},
                {"status": "done", "cost": 0.2, "log": LOG},
            ]
        }
    )
    os.environ.update(stand.env())
    os.environ.setdefault("HF_TOKEN", "hf_bench_not_a_secret")
    options = {
        "dstack_bin": stand.dstack_bin,
        "poll_interval_s": interval_s,
        "store": {"name": "hf", "dev_repo": "SLM-Lab/benchmark-dev"},
        "spec_root": str(REPO_ROOT),
    }
    errors: list[BaseException] = []

    def one(index: int) -> None:
        try:
            runner = DstackRunner(options)
            runner.listing = _CountingListing(runner.cli, max_age_s=interval_s)
            runner.say = lambda line: None  # ten runners' state lines would bury the numbers
            runner.run(_request(root, index))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n_runs)]
    _CountingListing.reads = 0
    wall0, cpu0, child0 = time.monotonic(), time.process_time(), _children_cpu()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    child = _children_cpu() - child0
    if errors:
        raise errors[0]
    calls = stand.calls()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "children_cpu_s": child,
        "ps": sum(1 for c in calls if c["command"] == "ps"),
        "apply": sum(1 for c in calls if c["command"] == "apply"),
        "logs": sum(1 for c in calls if c["command"] == "logs"),
        "calls": len(calls),
        "runner_polls": _CountingListing.reads,
    }


def real_ps_cost(samples: int = 3) -> dict | None:
    from dstack_server import DstackServer, dstack_venv

    venv = dstack_venv()
    if venv is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        server = DstackServer(venv, Path(tmp)).start()
        try:
            server.cli("ps", "-a", "--json")  # warm the file cache
            child0, wall0 = _children_cpu(), time.monotonic()
            for _ in range(samples):
                server.cli("ps", "-a", "--json")
            return {
                "cpu_s": (_children_cpu() - child0) / samples,
                "wall_s": (time.monotonic() - wall0) / samples,
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.2, help="shortened poll interval (s)")
    parser.add_argument("--duration", type=float, default=8.0, help="stand-in run length (s)")
    parser.add_argument("--real", action="store_true", help="also time a real `dstack ps`")
    args = parser.parse_args()
    interval = DEFAULT_INTERVAL

    cost = real_ps_cost() if args.real else None
    real_call_s = cost["wall_s"] if cost else 2.7
    print(f"Default poll interval: {interval:.0f} s; a real `dstack ps` call: {real_call_s:.1f} s")
    print("\n1. dstack CLI calls per run per hour, computed from the poll schedule")
    print(f"   run length   1 run in flight   {args.runs} runs in flight (shared listing)")
    for hours in (0.5, 1, 4, 6):
        one = computed_calls_per_hour(hours, interval, real_call_s)
        many = computed_calls_per_hour(hours, interval, real_call_s, args.runs)
        print(f"   {hours:>6.1f} h     {one:>10.1f}        {many:>10.1f}")

    single = run_in_flight(1, args.interval, args.duration)
    polls = single["ps"] - 1  # the first one picked the name
    overhead = single["wall_s"] / polls - args.interval
    print(
        f"\n   measured, 1 run, interval {args.interval} s: {single['wall_s']:.1f} s in flight,"
        f" ps {single['ps']}, apply {single['apply']}, logs {single['logs']}"
    )
    print(
        f"   period {single['wall_s'] / polls:.3f} s = interval + {overhead:.3f} s per poll;"
        f" at {interval:.0f} s: {3600 / (interval + overhead):.1f} ps per run-hour"
        f" + {FIXED_CALLS} per run"
    )

    many = run_in_flight(args.runs, args.interval, args.duration)
    periods = many["wall_s"] / (args.interval + overhead)
    polling = many["ps"] - many["apply"]  # each submission's fresh name check is not a poll
    print(
        f"   measured, {args.runs} runs: {polling} polling ps calls in {many['wall_s']:.1f} s"
        f" = {polling / periods:.2f} per period for all runs together"
        f" ({many['runner_polls'] - many['apply']} runner polls), plus {many['apply']} name"
        f" checks, apply {many['apply']}, logs {many['logs']}"
    )

    own = many["cpu_s"] / many["wall_s"]
    children = many["children_cpu_s"] / many["wall_s"]
    per_poll = many["cpu_s"] / many["runner_polls"]
    print(f"\n2. CPU with {args.runs} runs in flight (stand-in, interval {args.interval} s)")
    print(
        f"   this process: {many['cpu_s']:.2f} s CPU in {many['wall_s']:.1f} s = {own:.3f} of a"
        f" core ({per_poll * 1000:.1f} ms per runner poll); stand-in CLI processes:"
        f" {children:.3f} of a core"
    )
    print(f"   at {interval:.0f} s: this process {per_poll * args.runs / interval:.5f} of a core")
    if cost:
        shared = cost["cpu_s"] / (interval + real_call_s)
        unshared = shared * args.runs
        print(
            "\n3. a real `dstack ps -a --json` (local server, dstack 0.22.5):"
            f" {cost['cpu_s']:.2f} s CPU, {cost['wall_s']:.2f} s wall"
        )
        print(
            f"   at {interval:.0f} s with {args.runs} runs: the CLI calls use {shared:.3f} of a"
            f" core (one shared call per interval; one call per run would use {unshared:.3f})"
        )


if __name__ == "__main__":
    main()
