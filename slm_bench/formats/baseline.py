"""Random-policy returns per environment, in the format of SLM-Lab's random_baseline.json.

The bundled file (``slm_bench/data/random_baseline.json``) is an unmodified copy of SLM-Lab's
``slm_lab/spec/_random_baseline.json`` (https://github.com/kengz/SLM-Lab, MIT License,
Copyright (c) 2017 Wah Loon Keng, Laura Graesser; see ``slm_bench/data/README.md``): env id ->
``{"mean", "std"}`` of the undiscounted return of a uniformly random policy over 100 episodes,
or ``null`` for an env SLM-Lab could not start. With a checkout, the checkout's own copy is read
(``baseline_path``), so strength and Status use exactly the numbers SLM-Lab uses.

``python -m slm_bench.formats.baseline ENV ... --output FILE`` computes entries for envs SLM-Lab's
file does not list (episode ``i`` starts from ``env.reset(seed=seed + i)``, as SLM-Lab does).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from functools import lru_cache
from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.config_model import BenchConfig
from slm_bench.errors import BenchError

BUNDLED_PATH = Path(__file__).resolve().parents[1] / "data" / "random_baseline.json"
# Where an SLM-Lab checkout keeps its copy, relative to its root.
CHECKOUT_BASELINE = Path("slm_lab") / "spec" / "_random_baseline.json"
DEFAULT_EPISODES = 100


def baseline_path(config: BenchConfig) -> Path | None:
    """The baseline file a config uses: ``random_baseline`` when set, else the checkout's own
    ``slm_lab/spec/_random_baseline.json`` when it has one, else None (the bundled copy)."""
    if config.random_baseline:
        return Path(config.random_baseline)
    checkout = config.checkout
    if checkout:
        path = Path(checkout.root) / CHECKOUT_BASELINE
        if path.is_file():
            return path
    return None


def _read(path: Path) -> dict[str, dict | None]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise BenchError(f"{path}: random baseline file not found") from None
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_cached(source: str, mtime_ns: int, size: int) -> dict[str, dict | None]:
    # A 300-row table asks for one env at a time: the file is parsed once per version.
    path = Path(source)
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

    ``path`` may point at another file in the same format (``baseline_path(config)``).
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
        prog="python -m slm_bench.formats.baseline",
        description="Compute random-policy returns and (re)write them into the baseline file.",
    )
    parser.add_argument("env_ids", nargs="+", metavar="ENV", help="Gymnasium env ids")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES)
    parser.add_argument("--seed", type=int, default=0)
    # Required: the bundled file is SLM-Lab's own copy and is not regenerated here.
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        data = dict(_read(args.output)) if args.output.exists() else {}
        for env_id in args.env_ids:
            baseline = data[env_id] = compute_random_baseline(env_id, args.episodes, args.seed)
            print(f"{env_id}: mean {baseline['mean']:.2f}, std {baseline['std']:.2f}")
        write_json(args.output, dict(sorted(data.items())))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
