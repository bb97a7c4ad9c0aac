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
from pathlib import Path

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


class DstackServer:
    """``dstack server`` on 127.0.0.1 with its own HOME; ``env`` is what the CLI needs."""

    def __init__(self, venv: Path, root: Path):
        self.venv = venv
        self.root = Path(root)
        self.home = self.root / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
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
        with self.server_log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.dstack_bin, "server", "--host", "127.0.0.1", "--port", str(self.port)]
                + ["--token", TOKEN, "-y"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
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
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

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
