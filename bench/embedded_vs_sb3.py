"""Time the embedded runner against bare Stable-Baselines3, and sessions in parallel vs in turn.

1. One session: ``run_trial`` (max_session 1, in this process: SLM-Lab checkpoints, metrics,
   run folder, logs, model) against bare SB3 on the same settings - the model the runner builds
   (same algorithm, kwargs, env count, seed, one torch thread) then ``model.learn(frames)``.
   Prints wall and CPU times and their ratios (goal: <= 1.10); CPU time (both run in this
   process, single-threaded) is the steadier measure on a shared machine. Runs alternate, and
   the fastest of ``--repeat`` runs of each counts (after a short warm-up of both).
2. ``--sessions`` sessions through ``run_trial`` with ``--workers`` worker processes against
   one at a time, and the speed-up.

    python bench/embedded_vs_sb3.py [--algorithm ppo|a2c|dqn|sac] [--frames 5e4]
        [--sessions 4] [--workers 2] [--repeat 2] [--skip-parallel]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slm_bench.formats.settings import parse_number  # noqa: E402
from slm_bench.formats.spec import resolve_spec  # noqa: E402
from slm_bench.runners.embedded import build_model, plan_training, run_trial  # noqa: E402

SPECS = {
    "ppo": ("specs/ppo_classic.yaml", "ppo_cartpole"),
    "a2c": ("specs/a2c_classic.yaml", "a2c_cartpole"),
    "dqn": ("specs/dqn_classic.yaml", "dqn_cartpole"),
    "sac": ("specs/sac_classic.yaml", "sac_pendulum"),
}
SEED = 1


def bare_sb3(spec: dict, spec_file: str, spec_name: str) -> tuple[float, float]:
    """(wall, CPU) seconds for bare SB3: build the runner's model, then ``learn`` max_frame."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        plan = plan_training(spec, spec_file, spec_name)
        model = build_model(plan, SEED)
        model.learn(total_timesteps=plan.max_frame)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)


def embedded(
    spec: dict, spec_file: str, spec_name: str, workers: int, data: Path
) -> tuple[float, float]:
    """(wall, CPU of this process) seconds for ``run_trial`` (console output discarded); its
    folder is deleted afterwards. CPU covers the training only when it runs in this process."""
    start, cpu = time.perf_counter(), time.process_time()
    folder = run_trial(
        spec,
        spec_file,
        spec_name,
        spec_name,
        data,
        max_workers=workers,
        stream=io.StringIO(),
        seed=SEED,
    )
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(folder)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", choices=sorted(SPECS), default="ppo")
    parser.add_argument("--frames", default="5e4", help="env.max_frame (SLM-Lab notation)")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-parallel", action="store_true")
    args = parser.parse_args(argv)

    spec_file, spec_name = SPECS[args.algorithm]
    frames = parse_number(args.frames, "--frames")
    spec = resolve_spec(REPO / spec_file, spec_name, {"max_frame": frames})
    one = {**spec, "meta": {**spec["meta"], "max_session": 1}}
    print(f"{spec_name} ({spec_file}): {frames} frames, {spec['env']['num_envs']} envs")

    with tempfile.TemporaryDirectory(prefix="embedded_bench_") as tmp:
        data = Path(tmp)
        warm_up = {**one, "env": {**one["env"], "max_frame": 2000}}
        bare_sb3(warm_up, spec_file, spec_name)  # first-use costs (lazy imports, allocators)
        embedded(warm_up, spec_file, spec_name, 1, data)
        bare_times, runner_times = [], []
        for i in range(args.repeat):  # alternate which goes first
            if i % 2:
                runner_times.append(embedded(one, spec_file, spec_name, 1, data))
            bare_times.append(bare_sb3(one, spec_file, spec_name))
            if not i % 2:
                runner_times.append(embedded(one, spec_file, spec_name, 1, data))
        print(f"\none session (fastest of {args.repeat} runs each)   wall s   CPU s")
        for label, times in (
            ("bare SB3 model.learn", bare_times),
            ("embedded run_trial", runner_times),
        ):
            wall, cpu = min(t[0] for t in times), min(t[1] for t in times)
            runs = ", ".join(f"{t[0]:.1f}/{t[1]:.1f}" for t in times)
            print(f"  {label:<22} {wall:8.1f} {cpu:7.1f}   runs (wall/CPU): {runs}")
        ratio_wall = min(t[0] for t in runner_times) / min(t[0] for t in bare_times)
        ratio_cpu = min(t[1] for t in runner_times) / min(t[1] for t in bare_times)
        print(f"  ratio embedded / bare  {ratio_wall:8.3f} {ratio_cpu:7.3f}   (goal <= 1.10)")

        if not args.skip_parallel:
            many = {**spec, "meta": {**spec["meta"], "max_session": args.sessions}}
            sequential = embedded(many, spec_file, spec_name, 1, data)[0]
            parallel = embedded(many, spec_file, spec_name, args.workers, data)[0]
            print(f"\n{args.sessions} sessions through run_trial")
            print(f"  one at a time          {sequential:8.1f} s")
            print(f"  {args.workers} worker processes     {parallel:8.1f} s")
            print(f"  speed-up               {sequential / parallel:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
