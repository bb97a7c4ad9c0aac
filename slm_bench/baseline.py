"""Random-policy returns per environment, in the format of SLM-Lab's random_baseline.json.

The bundled file (``slm_bench/data/random_baseline.json``) maps env id -> ``{"mean", "std"}``
of the undiscounted return of a uniformly random policy over 100 episodes, computed as SLM-Lab
does: episode ``i`` starts from ``env.reset(seed=seed + i)``.

Regenerate entries with ``python -m slm_bench.baseline CartPole-v1 Acrobot-v1 ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.errors import BenchError

BUNDLED_PATH = Path(__file__).resolve().parent / "data" / "random_baseline.json"
DEFAULT_EPISODES = 100


def _read(path: Path) -> dict[str, dict | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: random baseline file not found") from None
    except json.JSONDecodeError as error:
        raise BenchError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a mapping of env id -> {{mean, std}}")
    return data


def random_return(env_id: str, path: Path | None = None) -> float | None:
    """Mean random-policy return for ``env_id``; None when the file does not know the env.

    ``path`` may point at a real SLM-Lab checkout's ``slm_lab/spec/random_baseline.json``.
    """
    source = Path(path) if path is not None else BUNDLED_PATH
    entry = _read(source).get(env_id)
    if entry is None:  # SLM-Lab writes null for envs it could not start
        return None
    mean = entry.get("mean") if isinstance(entry, dict) else None
    if isinstance(mean, bool) or not isinstance(mean, int | float):
        raise BenchError(f"{source}: {env_id}.mean: expected a number, got {mean!r}")
    return float(mean) if math.isfinite(mean) else None


def compute_random_baseline(env_id: str, episodes: int = DEFAULT_EPISODES, seed: int = 0) -> dict:
    """Run a uniformly random policy for ``episodes`` episodes; return ``{"mean", "std"}``."""
    import gymnasium as gym
    import numpy as np

    try:
        env = gym.make(env_id)
    except Exception as error:  # gymnasium raises many types for unknown or uninstalled envs
        raise BenchError(f"random baseline: cannot make env {env_id!r}: {error}") from None
    env.action_space.seed(seed)
    returns = []
    try:
        for episode in range(episodes):
            env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return {"mean": float(np.mean(returns)), "std": float(np.std(returns))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slm_bench.baseline",
        description="Compute random-policy returns and (re)write them into the baseline file.",
    )
    parser.add_argument("env_ids", nargs="+", metavar="ENV", help="Gymnasium env ids")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=BUNDLED_PATH)
    args = parser.parse_args(argv)
    try:
        data = _read(args.output) if args.output.exists() else {}
        for env_id in args.env_ids:
            data[env_id] = compute_random_baseline(env_id, args.episodes, args.seed)
            print(f"{env_id}: mean {data[env_id]['mean']:.2f}, std {data[env_id]['std']:.2f}")
        write_json(args.output, dict(sorted(data.items())))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
