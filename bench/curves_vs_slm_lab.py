"""Learning curves of one SLM-Lab spec: the real SLM-Lab against the embedded runner, same seeds.

Both read the same spec (default SLM-Lab's own ``a2c_gae_acrobot_arc`` with its published
values) from a working copy of SLM-Lab's checkout, as a variant whose max_frame comes from
``${max_frame}``. Two textual patches to the working copy (training is untouched):

- ``set_random_seed`` takes its base from ``SLM_BENCH_SEED`` instead of the clock, so session s
  gets ``SEED + 1000 * s``, as ``slm-bench run --seed SEED`` gives it. (SLM-Lab seeds torch and
  numpy; it never seeds the envs, so neither run repeats the other's episodes.)
- unless ``--graphs``, ``viz.save_image`` returns at once: plotly/kaleido renders cost seconds
  of CPU per checkpoint.

SLM-Lab runs with ``OPTIMIZE_PERF=false OMP_NUM_THREADS=1`` (one torch thread per session, as
the embedded runner's sessions).

Then ``slm-lab run`` and ``slm-bench run`` train, one after the other (or ``--skip-real`` /
``--skip-embedded`` to reuse a folder already in ``--out``). Both run folders are copied to
``--out``; per session, per checkpoint, ``total_reward_ma`` and the policy's entropy are read from
``session_df_train.csv`` and printed side by side (SLM-Lab's A2C logs no entropy), and
``--out/curves.png`` draws ``total_reward_ma`` and ``total_reward`` per session.

    python bench/curves_vs_slm_lab.py --out DIR [--frames 1e5] [--sessions 4] [--seed 1]
        [--spec-file F --spec-name N] [--skip-real] [--skip-embedded] [--graphs]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slm_lab_args import add_slm_lab_arguments  # noqa: E402

from slm_bench.formats.logs import read_run_log  # noqa: E402
from slm_bench.formats.settings import parse_number  # noqa: E402
from slm_bench.runners.slm_lab import budget_variant, command_of, working_copy  # noqa: E402

SPEC_FILE = "slm_lab/spec/benchmark_arc/a2c/a2c_classic_arc.yaml"
SPEC_NAME = "a2c_gae_acrobot_arc"
SEED_PATCH = (
    "slm_lab/lib/ml_util.py",
    "+ time.time())",
    "+ float(__import__('os').environ.get('SLM_BENCH_SEED') or time.time()))",
)
GRAPH_PATCH = (
    "slm_lab/lib/viz.py",
    "    if os.environ['PY_ENV'] == 'test':\n        return",
    "    if os.environ['PY_ENV'] == 'test' or os.environ.get('SLM_BENCH_NO_GRAPHS'):\n"
    "        return",
)


def _patch(root: Path, patch: tuple[str, str, str]) -> None:
    path, old, new = patch
    text = (root / path).read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{path}: expected one {old!r} to patch (another SLM-Lab version?)")
    (root / path).write_text(text.replace(old, new))


def _run(argv: list[str], cwd: Path, log: Path, env: dict[str, str]) -> Path:
    """Run a train command; return its run folder (from the log's Output line)."""
    with open(log, "wb") as out:
        code = subprocess.run(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        ).returncode
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        raise SystemExit(f"{argv[0]} exited with {code}:\n" + "\n".join(tail))
    folder = read_run_log(log).data_folder
    if not folder:
        raise SystemExit(f"{log}: no Output line naming the run folder")
    return cwd / "data" / folder


def read_curves(folder: Path) -> dict[int, list[dict[str, float]]]:
    """Per session: its checkpoints' frame, total_reward_ma and entropy (NaN where absent)."""
    curves: dict[int, list[dict[str, float]]] = {}
    for csv_path in sorted(folder.glob("info/*_s*_session_df_train.csv")):
        session = int(csv_path.name.split("_session_df")[0].rsplit("_s", 1)[1])
        with open(csv_path) as handle:
            rows = list(csv.DictReader(handle))
        curves[session] = [
            {
                key: float(row.get(key) or math.nan)
                for key in ("frame", "total_reward", "total_reward_ma", "entropy", "entropy_coef")
            }
            for row in rows
        ]
    if not curves:
        raise SystemExit(f"{folder}: no info/*_session_df_train.csv")
    return curves


def _at(curve: list[dict[str, float]], frame: float) -> dict[str, float]:
    """The last checkpoint at or before ``frame``."""
    before = [row for row in curve if row["frame"] <= frame]
    return before[-1] if before else curve[0]


def print_table(runs: dict[str, dict[int, list[dict[str, float]]]], points: int = 10) -> None:
    last = max(row["frame"] for curves in runs.values() for c in curves.values() for row in c)
    frames = [last * (i + 1) / points for i in range(points)]
    for name, curves in runs.items():
        print(f"\n{name}: total_reward_ma (entropy) per session at frame")
        print(f"{'frame':>8}" + "".join(f"{'s' + str(s):>18}" for s in curves))
        for frame in frames:
            cells = "".join(
                f"{_at(c, frame)['total_reward_ma']:>10.2f} ({_at(c, frame)['entropy']:.3f})"
                for c in curves.values()
            )
            print(f"{int(frame):>8}{cells}")


def plot(runs: dict[str, dict[int, list[dict[str, float]]]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(runs), figsize=(6 * len(runs), 7), sharex=True, squeeze=False)
    for col, (name, curves) in enumerate(runs.items()):
        for session, curve in curves.items():
            frames = [row["frame"] for row in curve]
            panels = ((axes[0][col], "total_reward_ma"), (axes[1][col], "total_reward"))
            for row_axes, key in panels:
                row_axes.plot(frames, [row[key] for row in curve], label=f"s{session}")
        axes[0][col].set_title(name)
        axes[0][col].set_ylabel("total_reward_ma")
        axes[1][col].set_ylabel("total_reward (last 100 episodes)")
        axes[1][col].set_xlabel("frame")
        axes[0][col].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for both runs and the PNG")
    parser.add_argument("--frames", default="1e5", help="max_frame of both runs")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1, help="session s gets SEED + 1000 * s")
    parser.add_argument("--spec-file", default=SPEC_FILE)
    parser.add_argument("--spec-name", default=SPEC_NAME)
    parser.add_argument("--skip-real", action="store_true", help="reuse --out/real")
    parser.add_argument("--skip-embedded", action="store_true", help="reuse --out/embedded")
    parser.add_argument("--graphs", action="store_true", help="let SLM-Lab render its graphs")
    add_slm_lab_arguments(parser, REPO)
    args = parser.parse_args(argv)
    frames = int(parse_number(args.frames))
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"SLM_BENCH_SEED": str(args.seed), "SLM_BENCH_NO_GRAPHS": "" if args.graphs else "1"}
    # one torch thread per session, as the embedded runner trains: SLM-Lab's perf setup raises
    # it to the core count, and 4 sessions x 2 threads on 2 busy cores spin more than they train
    env |= {"OPTIMIZE_PERF": "false", "OMP_NUM_THREADS": "1"}
    # the working copy and the embedded run's folder; kept when a step fails
    scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=args.out))
    checkout = working_copy(args.slm_lab_src, args.slm_lab_venv / "bin/slm-lab", scratch / "co")
    _patch(checkout, SEED_PATCH)
    _patch(checkout, GRAPH_PATCH)
    variant = str(Path(args.spec_file).with_name(Path(args.spec_file).stem + "_budget.yaml"))
    budget_variant(
        checkout, args.spec_file, args.spec_name, variant, {"max_session": args.sessions}
    )
    shutil.copy(checkout / variant, args.out / Path(variant).name)
    sets = ["-s", f"max_frame={frames}", "--", variant, args.spec_name, "train"]
    if not args.skip_real:
        argv = [str(command_of(checkout)), "run", *sets]
        folder = _run(argv, checkout, args.out / "real.log", env)
        shutil.rmtree(args.out / "real", ignore_errors=True)
        shutil.copytree(folder, args.out / "real")
    if not args.skip_embedded:
        cwd = scratch / "embedded"
        cwd.mkdir()
        argv = [sys.executable, "-m", "slm_bench", "run", "--workers", str(args.sessions)]
        argv += ["--seed", str(args.seed), *sets[:2], "--", str(checkout / variant)]
        folder = _run([*argv, args.spec_name, "train"], cwd, args.out / "embedded.log", env)
        shutil.rmtree(args.out / "embedded", ignore_errors=True)
        shutil.copytree(folder, args.out / "embedded")
    shutil.rmtree(scratch)
    names = {"real": "slm-lab run (real)", "embedded": "slm-bench run (embedded)"}
    runs = {name: read_curves(args.out / d) for d, name in names.items() if (args.out / d).is_dir()}
    print(f"{args.spec_name}, max_frame {frames}, {args.sessions} sessions, seed {args.seed}")
    print_table(runs)
    for name, curves in runs.items():
        finals = [c[-1]["total_reward_ma"] for c in curves.values()]
        print(f"{name}: final MA per session {[round(f, 2) for f in finals]}")
    plot(runs, f"{args.spec_name}: seed {args.seed}, {frames} frames", args.out / "curves.png")
    print(f"curves: {args.out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
