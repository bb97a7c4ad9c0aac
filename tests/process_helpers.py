"""Real Snakemake builds in their own process group, and the processes they leave."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from owned_process import OwnedProcess, is_own_keeper
from workflow_helpers import snakemake_argv, tiny_config

HOOKS = Path(__file__).resolve().parent / "kill_hooks"
LONG = 200_000  # frames: far longer than any test waits


def processes_under(root: Path) -> dict[int, str]:
    """pid -> command line of every live process working in, or naming, ``root``; neither this
    process nor the keepers of its own builds (a Build's group lives until the test ends it)."""
    root_text = str(root.resolve())
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if is_own_keeper(int(entry.name)):
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # gone, or a zombie (no cwd)
        command = cmdline.decode(errors="replace").strip()
        if cwd == root_text or cwd.startswith(root_text + os.sep) or root_text in command:
            found[int(entry.name)] = command
    return found


def train_config() -> dict:
    config = tiny_config()
    cartpole = config["envs"]["CartPole-v1"]
    cartpole["settings"]["max_frame"] = LONG
    cartpole["algorithms"] = {"ppo": cartpole["algorithms"]["ppo"]}
    return config


class Build:
    """Snakemake in a process group of its own that dies with the test process (even under
    SIGKILL: tests/owned_process.py), its output in a file. ``argv``/``env`` replace the
    default Snakemake command line and environment."""

    def __init__(
        self,
        workdir: Path,
        *args: str,
        cores: int = 2,
        pause: str = "",
        name: str = "build",
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.output_path = workdir.parent / f"{name}.out"
        self.paused = workdir.parent / f"{name}.paused"
        env = dict(os.environ) if env is None else env
        if pause:
            env.update(
                PYTHONPATH=os.pathsep.join([str(HOOKS), env.get("PYTHONPATH", "")]),
                SLM_BENCH_PAUSE=pause,
                SLM_BENCH_PAUSED=str(self.paused),
            )
        with self.output_path.open("w") as output:
            self.owned = OwnedProcess(
                argv or snakemake_argv(workdir, *args, cores=cores),
                workdir,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.process = self.owned.process
        self.pgid = self.owned.pgid

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_until(self, predicate, what: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill_group()
                pytest.fail(f"never reached {what}:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def log_has(self, relative: str, text: str, count: int = 1) -> bool:
        path = self.workdir / relative
        return path.exists() and path.read_text(errors="replace").count(text) >= count

    def kill_group(self) -> None:
        self.owned.kill()


def owned_builds():
    """A test's builds (a fixture's body): a failed test leaves nothing running."""
    started: list[Build] = []
    yield started
    for build in started:
        build.kill_group()
        for pid in processes_under(build.workdir):
            os.kill(pid, signal.SIGKILL)
