"""What the Slurm route costs: the same tiny benchmark built here and through a real Slurm.

Starts a real one-node Slurm with accounting (tests/slurm_cluster.py: needs root and Debian's
slurm-wlm, slurmdbd, munge and mariadb-server), then, in one run:

1. builds a tiny 2-cell CartPole benchmark (2000 frames, 2 sessions) locally (``--cores 2``)
   and through ``--workflow-profile profiles/slurm`` (its own settings: first status check 20 s
   after a submission), and prints both wall times and their ratio;
2. per training job: sbatch's own time (timed, 5 submissions), the time from submission to
   start (sacct Submit -> Start), the job's Slurm elapsed time against the same cell's local
   run time (the benchmark TSVs), and the polling latency (job end -> Snakemake saw it);
3. the controller load of watching the 292-row real matrix: a 292-task array is submitted, then
   one executor poll (the plugin's ``sacct`` command), one ``status`` listing (``squeue``) and
   one ``sacct -j`` of 292 ids are timed; the polls per hour follow the executor's schedule
   (every 20 s, growing by 10 s per cycle without a finished job, at most 180 s). With
   ``--checkout`` (an SLM-Lab checkout), also the plan-time cost of the Slurm resource
   functions for every planned row.

Usage: sudo python bench/slurm_overhead.py [--checkout PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from slurm_cluster import SlurmCluster, skip_reason  # noqa: E402
from test_slurm import slurm_workdir  # noqa: E402

from slm_bench.slurm import resources  # noqa: E402

ROWS = 292
CELLS = ("CartPole-v1/ppo", "CartPole-v1/a2c")


def build(argv: list[str], workdir: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"build failed in {workdir}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    (workdir / "build.log").write_text(done.stdout + done.stderr)
    return time.monotonic() - started


def snakemake_argv(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO_ROOT / "Snakefile"), "-d",
            str(workdir), *args, "results/BENCHMARKS.md"]  # fmt: skip


def timed(cluster: SlurmCluster, *argv: str) -> tuple[float, str]:
    started = time.monotonic()
    out = cluster.run(*argv, timeout_s=120)
    return time.monotonic() - started, out


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")


def job_figures(cluster: SlurmCluster, local: Path, remote: Path) -> list[dict]:
    """Per cell: queue wait, Slurm elapsed, local run time, and polling latency."""
    log = (remote / "build.log").read_text()
    figures = []
    for cell in CELLS:
        job_id = json.loads((remote / "results" / cell / "slurm.json").read_text())["job_id"]
        _, out = timed(cluster, "sacct", "-X", "-n", "-P", "-j", job_id, "-o",
                       "Submit,Start,End,ElapsedRaw")  # fmt: skip
        submit, start, end, elapsed = out.strip().split("|")
        tsv = (local / "results/benchmarks/run_cell" / f"{cell}.tsv").read_text().splitlines()
        # Snakemake's "Finished jobid" line after the job's "submitted with SLURM jobid N" line
        seen = _finished_time(log, job_id)
        figures.append({
            "cell": cell, "job": job_id,
            "queue_s": (_stamp(start) - _stamp(submit)).total_seconds(),
            "slurm_elapsed_s": float(elapsed), "local_run_s": float(tsv[1].split("\t")[0]),
            "poll_latency_s": (seen - _stamp(end)).total_seconds() if seen else None,
        })  # fmt: skip
    return figures


def _finished_time(log: str, job_id: str) -> datetime | None:
    """When Snakemake reported the Slurm job's Snakemake job finished (the [date] before it)."""
    match = re.search(rf"Job (\d+) has been submitted with SLURM jobid {job_id} ", log)
    if not match:
        return None
    finished = re.search(
        rf"\[(\w{{3}} \w{{3}} +\d+ [\d:]+ \d{{4}})\]\nFinished jobid: {match.group(1)} ", log
    )
    return datetime.strptime(finished.group(1), "%a %b %d %H:%M:%S %Y") if finished else None


def controller_load(cluster: SlurmCluster) -> dict:
    """Time the queries that watching 292 jobs makes, against 292 real job records."""
    array = cluster.run("sbatch", "--parsable", "--array=1-292", "-J", "bench292", "-o",
                        "/dev/null", "--wrap=true").strip()  # fmt: skip
    cluster.wait_for_state(array + "_292", {"COMPLETED"}, timeout_s=900)
    time.sleep(5)  # the records reach slurmdbd a few seconds after the jobs end
    since = f"{datetime.now():%Y-%m-%dT00:00}"
    poll_s, out = timed(cluster, "sacct", "-X", "--parsable2", "--clusters", "all", "--noheader",
                        "--format=JobIdRaw,State", "--starttime", since, "--endtime", "now",
                        "--name", "bench292")  # fmt: skip
    squeue_s, _ = timed(cluster, "squeue", "-h", "-o", "%i|%k|%T|%Z")
    ids = ",".join(f"{array}_{task}" for task in range(1, ROWS + 1))
    sacct_ids_s, _ = timed(cluster, "sacct", "-X", "-n", "-P", "-j", ids, "-o",
                           "JobIDRaw,State,NodeList,Elapsed,Timelimit")  # fmt: skip
    return {"rows": len(out.splitlines()), "poll_s": poll_s, "squeue_s": squeue_s,
            "sacct_ids_s": sacct_ids_s}  # fmt: skip


def plan_cost(checkout: Path) -> tuple[int, float]:
    """Seconds to evaluate the Slurm resource functions (memory, GPU) for every planned row."""
    from slm_bench.matrix.config import build_matrix, load_config

    config = load_config({"checkout": {"root": str(checkout)}}, "bench")
    matrix = build_matrix(config, "bench")
    options = config["slurm"]
    started = time.monotonic()
    for cell in matrix.cells.values():
        resources.memory_mb("run_cell", cell.env, cell.algo, options)
        resources.gres(cell.env_id, resources.spec_body(cell), options)
    return len(matrix.cells), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, help="an SLM-Lab checkout (292-row matrix)")
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        raise SystemExit(f"slurm_overhead: {reason}")
    with tempfile.TemporaryDirectory(prefix="slurm-bench-") as tmp:
        cluster = SlurmCluster(Path(tmp) / "slurm").start()
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            report(cluster, Path(tmp), args.checkout)
        finally:
            cluster.stop()


def report(cluster: SlurmCluster, tmp: Path, checkout: Path | None) -> None:
    print(f"one-node Slurm with accounting up in {cluster.startup_s:.1f} s")
    local, remote = slurm_workdir(tmp / "local"), slurm_workdir(tmp / "slurm")
    local_s = build(snakemake_argv(local, "--cores", "2", "--workflow-profile", "none"), local)
    slurm_s = build(snakemake_argv(remote, "--workflow-profile",
                                   str(REPO_ROOT / "profiles" / "slurm")), remote)  # fmt: skip
    print(f"tiny benchmark ({len(CELLS)} cells): local {local_s:.1f} s, through Slurm "
          f"{slurm_s:.1f} s, ratio {slurm_s / local_s:.2f}")  # fmt: skip
    submits = [timed(cluster, "sbatch", "--parsable", "-o", "/dev/null", "--wrap=true")[0]
               for _ in range(5)]  # fmt: skip
    print(f"sbatch: {sum(submits) / len(submits) * 1000:.0f} ms per submission (mean of 5)")
    for fig in job_figures(cluster, local, remote):
        latency = f"{fig['poll_latency_s']:.0f} s" if fig["poll_latency_s"] is not None else "?"
        print(f"  {fig['cell']} job {fig['job']}: queued {fig['queue_s']:.0f} s, ran "
              f"{fig['slurm_elapsed_s']:.0f} s in Slurm vs {fig['local_run_s']:.0f} s locally, "
              f"seen done {latency} after it ended (polling)")  # fmt: skip
    load = controller_load(cluster)
    polls_per_h = (3600 / 20, 3600 / 180)
    print(f"292 jobs: one executor poll (sacct, slurmdbd) {load['poll_s'] * 1000:.0f} ms for "
          f"{load['rows']} records; {polls_per_h[0]:.0f} to {polls_per_h[1]:.0f} polls/h -> "
          f"{load['poll_s'] * polls_per_h[0]:.1f} s/h of queries at most; status: one squeue "
          f"(slurmctld) {load['squeue_s'] * 1000:.0f} ms + one sacct of 292 ids "
          f"{load['sacct_ids_s'] * 1000:.0f} ms per call; submissions: 292 sbatch calls "
          f"~{sum(submits) / len(submits) * ROWS:.0f} s in all")  # fmt: skip
    if checkout:
        rows, seconds = plan_cost(checkout)
        print(f"plan: Slurm resource functions for {rows} planned rows: {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
