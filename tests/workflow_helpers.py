"""Run the real workflow with ``python -m snakemake`` in a temporary working directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from built_once import built_once

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


def tiny_config(envs: dict | None = None, **top) -> dict:
    """A CartPole config with SLM-Lab's Settings except a tiny max_frame, for fast real runs."""
    settings = {"max_frame": 2000, "num_envs": 4, "max_session": 4, "log_frequency": 500}
    algorithms = {
        "dqn": {"label": "DQN", "spec_file": "specs/dqn_classic.yaml", "spec_name": "dqn_cartpole"},
        "a2c": {"label": "A2C", "spec_file": "specs/a2c_classic.yaml", "spec_name": "a2c_cartpole"},
        "ppo": {"label": "PPO", "spec_file": "specs/ppo_classic.yaml", "spec_name": "ppo_cartpole"},
    }
    default_envs = {
        "CartPole-v1": {"settings": settings, "target": "> 400", "algorithms": algorithms}
    }
    return {"runner": "embedded", "store": "local", "envs": envs or default_envs, **top}


def acrobot_ppo() -> dict:
    """An Acrobot env with one PPO cell and the same tiny Settings, for a second env."""
    return {
        "settings": {"max_frame": 2000, "num_envs": 4, "max_session": 4, "log_frequency": 500},
        "target": "> -100",
        "algorithms": {
            "ppo": {
                "label": "PPO",
                "spec_file": "specs/ppo_classic.yaml",
                "spec_name": "ppo_acrobot",
            }
        },
    }


def make_workdir(path: Path, config: dict) -> Path:
    """A working directory with its own copy of the project's specs and the given config."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "specs", path / "specs", dirs_exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_argv(workdir: Path, *args: str, cores: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--cores", str(cores), "--workflow-profile", "none", "--profile", "none", *args,
    ]  # fmt: skip


def snakemake(workdir: Path, *args: str, cores: int = 2, timeout: float = 900):
    """Run Snakemake; return the CompletedProcess (stdout and stderr merged into .stdout)."""
    return subprocess.run(
        snakemake_argv(workdir, *args, cores=cores),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def planned_jobs(output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run: rule -> count (empty when nothing is to be done)."""
    jobs: dict[str, int] = {}
    lines = output.splitlines()
    if "Job stats:" not in lines:
        return jobs
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def planned_outputs(output: str) -> list[str]:
    """Every ``output:`` line of a dry run (one per job)."""
    return [
        line.split("output:", 1)[1].strip()
        for line in output.splitlines()
        if line.strip().startswith("output:")
    ]


# -- one trained tree, copied by the tests that break it -----------------------------------------


def trained_tree(tmp_path_factory, algos: tuple[str, ...] = ("ppo", "a2c")) -> Path:
    """A tiny CartPole build of ``algos`` (2000 frames x 4 sessions), trained once per test run.

    Tests never change it: they work on a ``copy_tree`` of it.
    """

    def build(workdir: Path) -> None:
        config = tiny_config()
        cartpole = config["envs"]["CartPole-v1"]
        cartpole["algorithms"] = {algo: cartpole["algorithms"][algo] for algo in algos}
        make_workdir(workdir, config)
        result = snakemake(workdir)
        assert result.returncode == 0, result.stdout[-4000:]

    return built_once(tmp_path_factory, "trained-" + "-".join(algos), build)


def copy_tree(source: Path, dest: Path) -> Path:
    """A copy of a working directory that Snakemake sees as equally up to date (mtimes kept)."""
    shutil.copytree(source, dest, symlinks=True)
    return dest


def error_lines(output: str) -> list[str]:
    """The distinct ``error: ...`` lines of a run, in order."""
    return list(dict.fromkeys(line for line in output.splitlines() if line.startswith("error: ")))


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (except names in ``skip``)."""
    import hashlib

    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in skip
    }
