"""One of SLM-Lab's own benchmark specs trained by the real SLM-Lab and by the embedded runner.

Both read the same spec file: a copy of SLM-Lab's checkout holds a variant of the spec (default
``ppo_cartpole_arc`` of ``slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml``) whose max_frame
comes from ``${max_frame}`` and whose ``meta.max_session`` is ``--sessions``. Then

- ``slm-lab run -s max_frame=N -- SPEC_FILE SPEC_NAME train`` (the venv `make slm-lab-venv`
  builds; all sessions in parallel processes, as SLM-Lab runs them), and
- ``slm-bench run --workers W -s max_frame=N -- SPEC_FILE SPEC_NAME train`` (the embedded
  runner: Stable-Baselines3, ``W`` sessions at a time, default all)

run in turn, each as a child process: wall time, CPU time (user + system of the child and all the
processes it waited for) and the trial's MA (``total_reward_ma`` of its ``trial_metrics:`` line)
side by side, with the ratios. What of the spec the embedded runner cannot map is printed first
(its plan's notes). On a shared machine run it when the load is low; CPU time is steadier.

    python bench/vs_slm_lab.py [--frames 1e4] [--sessions 4] [--workers N]
        [--spec-file F --spec-name N] [--slm-lab-src ../shared/slm-lab] [--slm-lab-venv V]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slm_lab_args import add_slm_lab_arguments  # noqa: E402

from slm_bench.formats.logs import read_run_log  # noqa: E402
from slm_bench.formats.settings import parse_number  # noqa: E402
from slm_bench.formats.spec import resolve_spec  # noqa: E402
from slm_bench.runners.embedded import plan_training  # noqa: E402
from slm_bench.runners.slm_lab import budget_variant, command_of, working_copy  # noqa: E402

SPEC_FILE = "slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml"
SPEC_NAME = "ppo_cartpole_arc"


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    ma: float
    folder: str


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], cwd: Path, log: Path) -> Measured:
    """Run ``argv`` in ``cwd`` with its output to ``log``; its wall and CPU time and MA."""
    start, cpu = time.perf_counter(), _children_cpu()
    with open(log, "wb") as out:
        code = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        raise SystemExit(f"{argv[0]} exited with {code}:\n" + "\n".join(tail))
    run = read_run_log(log)
    return Measured(wall, cpu, run.trial_metrics["total_reward_ma"], run.data_folder or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", default="1e4", help="max_frame of both runs")
    parser.add_argument("--sessions", type=int, default=4, help="meta.max_session of both runs")
    parser.add_argument("--workers", type=int, default=0, help="embedded sessions at once (0: all)")
    parser.add_argument("--spec-file", default=SPEC_FILE)
    parser.add_argument("--spec-name", default=SPEC_NAME)
    add_slm_lab_arguments(parser, REPO)
    args = parser.parse_args(argv)
    frames = int(parse_number(args.frames))
    workers = args.workers or args.sessions
    with tempfile.TemporaryDirectory(prefix="vs-slm-lab-") as tmp:
        scratch = Path(tmp)
        checkout = working_copy(args.slm_lab_src, args.slm_lab_venv / "bin/slm-lab", scratch / "co")
        variant = str(Path(args.spec_file).with_name(Path(args.spec_file).stem + "_budget.yaml"))
        budget_variant(
            checkout, args.spec_file, args.spec_name, variant, {"max_session": args.sessions}
        )
        spec = resolve_spec(checkout / variant, args.spec_name, {"max_frame": str(frames)})
        plan = plan_training(spec, args.spec_file, args.spec_name)
        print(
            f"{args.spec_file} {args.spec_name}: {plan.env_id}, max_frame {frames}, "
            f"{plan.num_envs} envs, {args.sessions} sessions, log_frequency {plan.log_frequency}"
        )
        print(f"embedded runner: SB3 {plan.algorithm}; not mapped exactly:")
        for note in plan.notes or ("(nothing)",):
            print(f"  - {note}")
        sets = ["-s", f"max_frame={frames}", "--", variant, args.spec_name, "train"]
        real = measure([str(command_of(checkout)), "run", *sets], checkout, scratch / "real.log")
        embedded_cwd = scratch / "embedded"
        embedded_cwd.mkdir()
        ours = measure(
            [sys.executable, "-m", "slm_bench", "run", "--workers", str(workers), *sets[:2], "--"]
            + [str(checkout / variant), args.spec_name, "train"],
            embedded_cwd,
            scratch / "embedded.log",
        )
    print(f"\n{'':24}{'wall s':>10}{'CPU s':>10}{'MA':>10}")
    for name, m in (("slm-lab run", real), ("slm-bench run (embedded)", ours)):
        print(f"{name:24}{m.wall_s:10.1f}{m.cpu_s:10.1f}{m.ma:10.2f}")
    print(
        f"{'ratio slm-lab/embedded':24}{real.wall_s / ours.wall_s:9.1f}x"
        f"{real.cpu_s / ours.cpu_s:9.1f}x{real.ma / ours.ma:9.2f}x"
    )
    print(
        f"CPU per frame: slm-lab {real.cpu_s / (frames * args.sessions) * 1e3:.2f} ms, "
        f"embedded {ours.cpu_s / (frames * args.sessions) * 1e3:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
