"""Search the Classic Control cells that miss their target, apply the best values, retrain.

SLM-Lab's workflow as one command, through the pipeline's own targets:

1. ``snakemake --configfile CONFIG results/BENCHMARKS.md``  (train every cell at full budget)
2. ``snakemake --configfile CONFIG search_failed``          (search every cell not ✅)
3. ``snakemake --configfile CONFIG results/ENV/ALGO/search/applied.json`` per searched cell
4. ``snakemake --configfile CONFIG results/BENCHMARKS.md``  (retrains exactly those cells)

then prints, per searched cell (one with a ``search/best.json``), the MA before and after (each
train run's metrics.json), the best trial, the budget spent (trials; CPU and wall seconds from
the search job's benchmark file) and SLM-Lab's published MA.
``--report-only`` prints the table from an existing results folder without running anything.

Usage: python bench/search_classic.py [--configfile configs/classic.yaml] [--cores N] [--seed N]
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


def snakemake(configfile: str, cores: str, seed: int | None, *targets: str) -> None:
    argv = [sys.executable, "-m", "snakemake", *targets, f"--configfile={configfile}"]
    argv += ["--cores", cores] + ([f"--config=seed={seed}"] if seed is not None else [])
    print("$", " ".join(argv[1:]), flush=True)
    subprocess.run(argv, cwd=REPO, check=True)


def read_json(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.is_file() else None


def seconds(tsv: Path) -> tuple[float, float]:
    """(CPU, wall) seconds of a job from its Snakemake benchmark file; NaN when it has none."""
    if not tsv.is_file():
        return float("nan"), float("nan")
    with open(tsv, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return float("nan"), float("nan")
    return sum(float(r["cpu_time"]) for r in rows), sum(float(r["s"]) for r in rows)


def report(results: Path, before: dict[str, float]) -> None:
    """Every searched cell (one with a search/best.json): MA before, best trial, MA after."""
    cells = sorted(p.parents[1].relative_to(results).as_posix()
                   for p in results.glob("*/*/search/best.json"))  # fmt: skip
    print(f"\n{'cell':<18}{'MA before':>11}{'best trial':>12}{'MA after':>11}{'SLM-Lab':>10}"
          f"{'trials':>8}{'CPU s':>9}{'wall s':>9}")  # fmt: skip
    for key in cells:
        best = read_json(results / key / "search" / "best.json") or {}
        after = trained_ma(results / key)
        cpu, wall = seconds(results / "benchmarks" / "search_cell" / f"{key}.tsv")
        budget = best.get("budget", {})
        print(
            f"{key:<18}{before.get(key) or float('nan'):>11.2f}"
            f"{best.get('total_reward_ma', float('nan')):>12.2f}"
            f"{after if after is not None else float('nan'):>11.2f}"
            f"{PUBLISHED.get(key, float('nan')):>10.2f}"
            f"{budget.get('trials_run', 0):>8}{cpu:>9.0f}{wall:>9.0f}"
        )


def trained_ma(cell_dir: Path) -> float | None:
    """The MA of the cell's current train run (its metrics.json), searched or not."""
    metrics = read_json(cell_dir / "metrics.json") or {}
    return metrics.get("total_reward_ma")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default="configs/classic.yaml")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--seed", type=int, help="fixed per-cell seeds (the config's seed)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    results = REPO / "results"
    if not args.report_only:
        snakemake(args.configfile, args.cores, args.seed, "results/BENCHMARKS.md")
    saved = results / "search" / "ma_before_search.json"
    if args.report_only:
        before = read_json(saved) or {}
    else:
        cells = [p.parent.relative_to(results).as_posix() for p in results.glob("*/*/metrics.json")]
        before = {key: trained_ma(results / key) for key in cells}
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(before, indent=2))
        snakemake(args.configfile, args.cores, args.seed, "search_failed")
        for key in read_json(results / "search" / "failed_cells.json") or []:
            snakemake(args.configfile, args.cores, args.seed, f"results/{key}/search/applied.json")
        snakemake(args.configfile, args.cores, args.seed, "results/BENCHMARKS.md")
    report(results, before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
