"""The Classic Control phase at full budget on 3 fresh seeds: does every cell hold?

Picks ``--seeds`` (3) config seeds from the clock (``int(time.time()) + k``; no search or
retrain used a seed this large; ``--seed-list`` gives them instead) and prints them. Per seed,
through the pipeline's own targets:

    snakemake --configfile CONFIG --config seed=S compare_reference=REF \
        -- results/BENCHMARKS.md compare

then moves ``results/`` to ``OUT/seed_S/`` (so the next seed trains from scratch). At the end,
per cell: the MA per seed (its stats.json ``trial_ma``), how many seeds are ✅ (row.json's status),
the sessions that never learned (stats.json ``never_learned`` where the pipeline writes it, else
this script's rule: a session whose final MA is at most 5% of the way from SLM-Lab's random
baseline to the target), and the ``compare`` verdict against SLM-Lab's published table per seed.
``--report-only`` prints the table from the ``OUT/seed_*`` folders already there; an interrupted
bench goes on with ``--resume --seed-list`` and the seeds not yet in OUT (Snakemake keeps what
the first of them had finished in ``results/``).

    python bench/seeds_classic.py --out DIR [--configfile configs/classic.yaml] [--cores N]
        [--seeds 3 | --seed-list S1,S2,S3] [--report-only] [--resume]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slm_bench.formats.settings import parse_target  # noqa: E402
from slm_bench.statistics.stats import normalise  # noqa: E402

REFERENCE = "tests/fixtures/slm-lab/BENCHMARKS.md"  # SLM-Lab's published table (96be3938)
RETURN_BAND = 0.05  # stuck: final MA within 5% of the random-to-target gap above random


def train_seed(configfile: str, cores: str, seed: int, out: Path) -> None:
    argv = [sys.executable, "-m", "snakemake", f"--configfile={configfile}", "--cores", cores]
    argv += ["--config", f"seed={seed}", f"compare_reference={REFERENCE}", "--keep-going"]
    argv += ["--", "results/BENCHMARKS.md", "compare"]
    print("$", " ".join(argv[1:]), flush=True)
    code = subprocess.run(argv, cwd=REPO).returncode
    print(f"seed {seed}: snakemake exited with {code}", flush=True)
    if (REPO / "results").is_dir():
        shutil.move(REPO / "results", out / f"seed_{seed}")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def stuck_sessions(stats: dict) -> tuple[int, int, str]:
    """(stuck, sessions, which rule): the pipeline's never_learned flag, else the local rule."""
    flag = stats.get("never_learned")
    if isinstance(flag, dict) and "count" in flag:
        return flag["count"], flag["of"], "pipeline"
    sessions = [s["final_ma"] for s in stats.get("sessions", [])]
    target = parse_target(stats["target"]) if stats.get("target") else None
    scores = [normalise(ma, target, stats.get("random_return")) for ma in sessions]
    return sum(s is not None and s <= RETURN_BAND for s in scores), len(sessions), "local"


def cell_report(seed_dirs: list[Path]) -> list[dict]:
    cells = sorted({p.parent.relative_to(d).as_posix() for d in seed_dirs
                    for p in d.glob("*/*/stats.json")})  # fmt: skip
    rows = []
    for key in cells:
        per_seed = []
        for folder in seed_dirs:
            stats = read_json(folder / key / "stats.json")
            row = read_json(folder / key / "row.json")
            verdicts = {c["cell"]: c for c in read_json(folder / "compare.json").get("cells", [])}
            stuck, of, rule = stuck_sessions(stats) if stats else (0, 0, "-")
            per_seed.append(
                {
                    "seed": folder.name.removeprefix("seed_"),
                    "ma": stats.get("trial_ma", stats.get("mean")),
                    "status": row.get("status"),
                    "stuck": stuck,
                    "sessions": of,
                    "rule": rule,
                    "verdict": verdicts.get(key, {}).get("verdict", "-"),
                    "reference": verdicts.get(key, {}).get("reference_ma"),
                }
            )
        rows.append({"cell": key, "seeds": per_seed})
    return rows


def print_report(rows: list[dict]) -> None:
    print(f"\n{'cell':<18}{'MA per seed':<30}{'✅':>6}{'stuck':>8}{'SLM-Lab':>10}  verdicts")
    for row in rows:
        seeds = row["seeds"]
        mas = ", ".join("-" if s["ma"] is None else f"{s['ma']:.2f}" for s in seeds)
        solved = sum(s["status"] == "✅" for s in seeds)
        stuck = f"{sum(s['stuck'] for s in seeds)}/{sum(s['sessions'] for s in seeds)}"
        reference = next((s["reference"] for s in seeds if s["reference"] is not None), None)
        ref = "-" if reference is None else f"{reference:.2f}"
        verdicts = ", ".join(s["verdict"] for s in seeds)
        solved_text = f"{solved}/{len(seeds)}"
        print(f"{row['cell']:<18}{mas:<30}{solved_text:>6}{stuck:>8}{ref:>10}  {verdicts}")
    rules = {s["rule"] for row in rows for s in row["seeds"]}
    if "local" in rules:
        print(f"stuck (local rule): final MA at most {RETURN_BAND:.0%} of the way from SLM-Lab's "
              "random baseline to the target")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where each seed's results go")
    parser.add_argument("--configfile", default="configs/classic.yaml")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-list", help="comma-separated seeds instead of the clock's")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--resume", action="store_true", help="results/ holds the first seed's unfinished run"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if (REPO / "results").exists() and not args.resume:
            raise SystemExit(f"{REPO / 'results'} exists: move it away first (each seed's run "
                             "starts from an empty results/ and is moved to --out)")  # fmt: skip
        now = int(time.time())
        seeds = (
            [int(s) for s in args.seed_list.split(",")]
            if args.seed_list
            else [now + k for k in range(args.seeds)]
        )
        print(f"fresh seeds: {', '.join(map(str, seeds))}", flush=True)
        for seed in seeds:
            train_seed(args.configfile, args.cores, seed, args.out)
    seed_dirs = sorted(p for p in args.out.glob("seed_*") if p.is_dir())
    rows = cell_report(seed_dirs)
    (args.out / "seeds_report.json").write_text(json.dumps(rows, indent=2))
    print_report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
