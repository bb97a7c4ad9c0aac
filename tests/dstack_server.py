"""A real ``dstack server`` for the tests, and the recorder of its ``ps -a --json`` shapes.

dstack[server]==0.22.5 lives in a venv of its own (its pinned dependencies clash with the
project's): ``SLM_BENCH_DSTACK_VENV`` names it, default ``.venv-dstack`` at the project root (what
``make test`` builds).
Tests skip when there is none.

The server runs on SQLite with ``HOME`` and ``DSTACK_SERVER_DIR`` in a temp folder; on start it
writes the CLI's ``~/.dstack/config.yml`` (project ``main``, the admin token) into that HOME, so
the CLI needs no ``dstack project add``. With no fleet no run can execute: a run goes ``failed``
(job message ``no fleets``), or stays ``pending`` under a retry policy; ``stop`` gives
``terminated``. Those are the shapes recorded into ``tests/standins/recorded/``.

Record again (after a dstack upgrade): ``python tests/dstack_server.py record``.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from owned_process import OwnedProcess

if TYPE_CHECKING:
    import pytest

DSTACK_VERSION = "0.22.5"
TOKEN = "slm-bench-test-token"
RECORDED = Path(__file__).resolve().parent / "standins" / "recorded"
# The value recordings carry for HF_TOKEN: the server echoes env values in `ps --json`.
DUMMY_SECRET = "hf_recording_dummy_not_a_token"


def dstack_venv() -> Path | None:
    """The venv holding dstack[server], or None (then the real-server tests skip)."""
    configured = os.environ.get("SLM_BENCH_DSTACK_VENV")
    venv = Path(configured) if configured else Path(__file__).resolve().parents[1] / ".venv-dstack"
    return venv if (venv / "bin" / "dstack").exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# `dstack server` with dstack's own race between a stop and a retry made wide enough to hit
# every time. A run worker that took a `submitted` run whose job found no capacity writes the
# run back to `pending` (a retry) over the `terminating` a `dstack stop` wrote meanwhile: the
# stop does not take the worker's row lock (dstack/_internal/server/background/pipeline_tasks/
# runs/__init__.py, _apply_active_result; services/runs stop_runs). Seen on a plain server in 1
# of about 13 stops, where the worker's few milliseconds happened to hold the run. Here the
# worker takes a submitted run within about a second (its minimum interval 0.2 s instead of
# 5 s) and holds the first retry of each run until a stop has marked the run terminating (at
# most HOLD_S), then writes it as dstack does. Nothing else is changed.
RACE_LAUNCHER = """
import asyncio, datetime, os, sys
# What `dstack server` puts in the environment, set before dstack's settings are imported here.
args = sys.argv[1:]
os.environ.update(
    DSTACK_SERVER_HOST=args[args.index("--host") + 1],
    DSTACK_SERVER_PORT=args[args.index("--port") + 1],
    DSTACK_SERVER_ADMIN_TOKEN=args[args.index("--token") + 1],
    DSTACK_UPDATE_DEFAULT_PROJECT="1",
)
from sqlalchemy import select
from dstack._internal.core.models.runs import RunStatus
from dstack._internal.server.background.pipeline_tasks import runs
from dstack._internal.server.db import get_session_ctx
from dstack._internal.server.models import RunModel

HOLD_S = float(os.environ["SLM_BENCH_RACE_HOLD_S"])
defaults = list(runs.RunPipeline.__init__.__defaults__)
defaults[3] = datetime.timedelta(seconds=0.2)  # min_processing_interval
runs.RunPipeline.__init__.__defaults__ = tuple(defaults)
real = runs.active.process_active_run
held = set()

async def status_of(run_id):
    async with get_session_ctx() as session:
        query = select(RunModel.status).where(RunModel.id == run_id)
        return (await session.execute(query)).scalar_one()

async def process_active_run(context):
    result = await real(context)
    run_id = context.run_model.id
    if result.run_update_map.get("status") == RunStatus.PENDING and run_id not in held:
        held.add(run_id)
        for _ in range(int(HOLD_S / 0.05)):
            if await status_of(run_id) == RunStatus.TERMINATING:
                break
            await asyncio.sleep(0.05)
    return result

runs.active.process_active_run = process_active_run
from dstack._internal.cli.main import main
sys.argv[0] = "dstack"
sys.exit(main())
"""


class DstackServer:
    """``dstack server`` on 127.0.0.1 with its own HOME; ``env`` is what the CLI needs.

    ``race_hold_s``: start it through :data:`RACE_LAUNCHER`, so that a run stopped right after
    its job found no capacity comes back as ``pending``, as dstack's own race does at times.
    """

    def __init__(self, venv: Path, root: Path, race_hold_s: float | None = None):
        self.venv = venv
        self.race_hold_s = race_hold_s
        self.root = Path(root)
        self.home = self.root / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.owned: OwnedProcess | None = None
        self.server_log = self.root / "server.log"

    @property
    def dstack_bin(self) -> str:
        return str(self.venv / "bin" / "dstack")

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.home),
            DSTACK_SERVER_DIR=str(self.root / "server"),
            DSTACK_PROJECT="main",
            NO_COLOR="1",
            COLUMNS="200",
        )
        env.pop("DSTACK_SERVER_URL", None)
        return env

    def start(self, timeout_s: float = 120) -> DstackServer:
        self.home.mkdir(parents=True, exist_ok=True)
        # The CLI checks online for a newer version once a day; a fresh stamp skips that.
        stamp = self.home / ".cache" / ".dstack" / "cli" / "last_check"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        command = [self.dstack_bin]
        env = self.env
        if self.race_hold_s is not None:
            command = [str(self.venv / "bin" / "python"), "-c", RACE_LAUNCHER]
            env.update(
                SLM_BENCH_RACE_HOLD_S=str(self.race_hold_s), DSTACK_SERVER_RELOAD_DISABLED="1"
            )
        # Its group dies with this process, even a SIGKILLed pytest (tests/owned_process.py).
        with self.server_log.open("wb") as log:
            self.owned = OwnedProcess(
                [*command, "server", "--host", "127.0.0.1", "--port", str(self.port)]
                + ["--token", TOKEN, "-y"],
                self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.process = self.owned.process
        deadline = time.monotonic() + timeout_s
        cli_config = self.home / ".dstack" / "config.yml"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dstack server exited: see {self.server_log}")
            if cli_config.exists() and self._answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dstack server did not answer within {timeout_s:.0f}s")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/server/get_info", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP reply means it is serving
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, up to 20 s to exit, then SIGKILL to what is left of the server's group."""
        if self.owned is not None:
            self.owned.stop(signal.SIGTERM, timeout_s=20)

    def cli(self, *args: str, cwd: Path | None = None, extra_env: dict | None = None):
        env = {**self.env, **(extra_env or {})}
        return subprocess.run(
            [self.dstack_bin, *args],
            env=env,
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )


def served(root: Path, race_hold_s: float | None = None) -> Iterator[DstackServer]:
    """A started server for a fixture to ``yield from``, stopped after; the test skips without
    the dstack venv."""
    import pytest  # here: the recorder below runs without pytest

    venv = dstack_venv()
    if venv is None:
        pytest.skip(
            "no dstack venv: set SLM_BENCH_DSTACK_VENV (pip install 'dstack[server]==0.22.5')"
        )
    server = DstackServer(venv, root, race_hold_s=race_hold_s).start()
    try:
        yield server
    finally:
        server.stop()


def use_server(server: DstackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this process's dstack CLI calls at ``server`` (what ``server.env`` changes)."""
    for key, value in server.env.items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)


# -- recording --------------------------------------------------------------------------------


def redact_ps(document: dict) -> dict:
    """``ps --json`` with env values and the per-HOME SSH key replaced by placeholders.

    The server echoes every env value it was given (``-e`` values and bare names read from the
    submitter's environment, HF_TOKEN included) in ``run_spec.configuration.env`` and
    ``jobs[].job_spec.env``: those must never be stored.
    """
    document = copy.deepcopy(document)
    for run in document["runs"]:
        spec = run["run_spec"]
        spec["configuration"]["env"] = {key: f"<{key}>" for key in spec["configuration"]["env"]}
        spec["ssh_key_pub"] = "ssh-rsa AAAA<redacted> admin\n"
        for job in run["jobs"]:
            job["job_spec"]["env"] = {key: f"<{key}>" for key in job["job_spec"]["env"]}
    text = json.dumps(document)
    assert DUMMY_SECRET not in text and TOKEN not in text
    return document


def _task(name: str, retry: bool) -> str:
    lines = [
        "type: task",
        f"name: {name}",
        "env:",
        "  - HF_TOKEN",
        "  - SPEC_FILE",
        "commands:",
        "  - echo ${SPEC_FILE}",
        "resources:",
        "  gpu: 1",
        "spot_policy: auto",
        "max_duration: 1h",
    ]
    if retry:
        lines += ["retry:", "  on_events: [no-capacity, interruption]", "  duration: 1h"]
    return "\n".join(lines) + "\n"


def record(dest: Path = RECORDED) -> list[Path]:
    """Drive a fresh server into failed / pending / terminated runs and save each shape."""
    import tempfile

    venv = dstack_venv()
    if venv is None:
        raise SystemExit("no dstack venv: set SLM_BENCH_DSTACK_VENV")
    with tempfile.TemporaryDirectory() as tmp:
        server = DstackServer(venv, Path(tmp)).start()
        try:
            work = Path(tmp)
            env = {"HF_TOKEN": DUMMY_SECRET}
            for name, retry in (("rec-failed", False), ("rec-pending", True), ("rec-stop", True)):
                (work / f"{name}.yml").write_text(_task(name, retry))
                done = server.cli(
                    "apply", "-f", f"{name}.yml", "-y", "-d", "-n", name, "-e", "SPEC_FILE=s.yaml",
                    cwd=work, extra_env=env,
                )  # fmt: skip
                assert done.returncode == 0, done.stdout + done.stderr
            assert server.cli("stop", "-y", "rec-stop").returncode == 0
            wanted = {"rec-failed": "failed", "rec-pending": "pending", "rec-stop": "terminated"}
            deadline = time.monotonic() + 120
            while True:
                document = json.loads(server.cli("ps", "-a", "--json").stdout)
                status = {r["run_spec"]["run_name"]: r["status"] for r in document["runs"]}
                if all(status.get(k) == v for k, v in wanted.items()):
                    break
                assert time.monotonic() < deadline, status
                time.sleep(2)
        finally:
            server.stop()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, status in wanted.items():
        run = next(r for r in document["runs"] if r["run_spec"]["run_name"] == name)
        path = dest / f"ps_{status}.json"
        one = redact_ps({"project": document["project"], "runs": [run]})
        path.write_text(json.dumps(one, indent=2) + "\n")
        written.append(path)
    written.append(_write_provisioning_example(venv, dest))
    return written


def _write_provisioning_example(venv: Path, dest: Path) -> Path:
    """A ``job_provisioning_data`` object built and serialised by dstack's own model.

    A run only gets one on a real instance, which no offline server has; building it with
    ``JobProvisioningData`` (extra fields forbidden) keeps the stand-in's running runs in the
    server's exact shape.
    """
    code = """
import json, sys
from dstack._internal.core.models.runs import JobProvisioningData
from dstack._internal.core.models.instances import InstanceType, Resources, Gpu
data = JobProvisioningData(
    backend="aws", instance_type=InstanceType(name="g5.xlarge", resources=Resources(
        cpus=4, memory_mib=16384, spot=True,
        gpus=[Gpu(name="A10G", memory_mib=24576, vendor="nvidia")])),
    instance_id="i-0123456789abcdef0", hostname="203.0.113.10", region="us-east-1",
    price=0.4, username="ubuntu", ssh_port=22, dockerized=True)
print(data.model_dump_json(indent=2))
"""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    path = dest / "job_provisioning_data.json"
    path.write_text(out.stdout)
    return path


if __name__ == "__main__":
    if sys.argv[1:] == ["record"]:
        for written_path in record():
            print(written_path)
    else:
        raise SystemExit("usage: python tests/dstack_server.py record")
