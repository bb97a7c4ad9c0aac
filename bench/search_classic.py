"""Search the Classic Control cells that miss their target, apply the best values, retrain.

SLM-Lab's workflow as one command, through the pipeline's own targets:

1. ``snakemake --configfile CONFIG results/BENCHMARKS.md``  (train every cell at full budget)
2. ``snakemake --configfile CONFIG search_failed``          (search every cell not ✅)
3. ``snakemake --configfile CONFIG results/ENV/ALGO/search/applied.json`` per searched cell
4. ``snakemake --configfile CONFIG results/BENCHMARKS.md``  (retrains exactly those cells)

then prints, per searched cell, the MA before and after, the best trial, the budget spent
(trials, CPU seconds from the search job's benchmark file) and SLM-Lab's published MA.
``--report-only`` prints the table from an existing results folder without running anything.

Usage: python bench/search_classic.py [--configfile configs/classic.yaml] [--cores N]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# SLM-Lab's published MAs for these cells (its docs/BENCHMARKS.md, commit 96be3938).
PUBLISHED = {
    "CartPole-v1/a2c": 496.68,
    "Acrobot-v1/a2c": -83.99,
    "Pendulum-v1/a2c": -820.74,
    "Pendulum-v1/ppo": -174.87,
}


def snakemake(configfile: str, cores: str, *targets: str) -> None:
    argv = [sys.executable, "-m", "snakemake", *targets, "--configfile", configfile]
    argv += ["--cores", cores]
    print("$", " ".join(argv[1:]), flush=True)
    subprocess.run(argv, cwd=REPO, check=True)


def read_json(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.is_file() else None


def cpu_seconds(tsv: Path) -> float | None:
    if not tsv.is_file():
        return None
    with open(tsv, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return sum(float(row["cpu_time"]) for row in rows) if rows else None


def report(results: Path, before: dict[str, float]) -> None:
    cells = read_json(results / "search" / "failed_cells.json") or []
    print(f"\n{'cell':<18}{'MA before':>11}{'best trial':>12}{'MA after':>11}{'SLM-Lab':>10}"
          f"{'trials':>8}{'CPU s':>9}")  # fmt: skip
    for key in cells:
        best = read_json(results / key / "search" / "best.json") or {}
        row = read_json(results / key / "row.json") or {}
        cpu = cpu_seconds(results / "benchmarks" / "search_cell" / f"{key}.tsv")
        budget = best.get("budget", {})
        print(
            f"{key:<18}{before.get(key) or float('nan'):>11.2f}"
            f"{best.get('total_reward_ma', float('nan')):>12.2f}"
            f"{row.get('ma', float('nan')):>11.2f}{PUBLISHED.get(key, float('nan')):>10.2f}"
            f"{budget.get('trials_run', 0):>8}{(cpu or float('nan')):>9.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default="configs/classic.yaml")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    results = REPO / "results"
    if not args.report_only:
        snakemake(args.configfile, args.cores, "results/BENCHMARKS.md")
    saved = results / "search" / "ma_before_search.json"
    if args.report_only:
        before = read_json(saved) or {}
    else:
        rows = {p.parent.relative_to(results).as_posix(): p for p in results.glob("*/*/row.json")}
        before = {key: (read_json(path) or {}).get("ma") for key, path in rows.items()}
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(before, indent=2))
        snakemake(args.configfile, args.cores, "search_failed")
        for key in read_json(results / "search" / "failed_cells.json") or []:
            snakemake(args.configfile, args.cores, f"results/{key}/search/applied.json")
        snakemake(args.configfile, args.cores, "results/BENCHMARKS.md")
    report(results, before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
