"""One tiny real benchmark (embedded runner, 2000 frames x 4 sessions, three cells over two envs),
built once per test session by the real workflow and shared by the statistics, comparison and
report tests, which work on copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

from built_once import built_once
from workflow_helpers import acrobot_ppo, make_workdir, snakemake, tiny_config

CELLS = ("CartPole-v1/ppo", "CartPole-v1/dqn", "Acrobot-v1/ppo")


def tiny_results_config(**top) -> dict:
    config = tiny_config(**top)
    del config["envs"]["CartPole-v1"]["algorithms"]["a2c"]
    config["envs"]["Acrobot-v1"] = acrobot_ppo()
    return config


def tiny_benchmark(tmp_path_factory) -> Path:
    """The built workdir (results/BENCHMARKS.md and the statistics); do not modify it."""

    def build(workdir: Path) -> None:
        make_workdir(workdir, tiny_results_config())
        result = snakemake(workdir, "results/BENCHMARKS.md", "stats")
        assert result.returncode == 0, result.stdout[-4000:]

    return built_once(tmp_path_factory, "tiny-results", build)


def copy_of(workdir: Path, destination: Path) -> Path:
    """A private copy of a built workdir (Snakemake's metadata included, so nothing reruns)."""
    shutil.copytree(workdir, destination, symlinks=True)
    return destination
