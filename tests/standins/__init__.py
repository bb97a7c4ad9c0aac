"""Driving the stand-in ``dstack`` executable (see ``tests/standins/dstack``) from tests."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

STANDIN = Path(__file__).resolve().parent / "dstack"
STATE_VAR = "DSTACK_STANDIN_STATE"


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test stops with Ctrl-C (SIGINT): a shell starts
    background jobs with SIGINT ignored, which the child would inherit, and then Python never
    raises KeyboardInterrupt in it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class StandinDstack:
    """A state folder plus a ``bin/dstack`` launcher that runs the stand-in with this interpreter.

    ``env()`` is what a process calling it needs (``DSTACK_STANDIN_STATE``, ``bin`` first on
    PATH); ``dstack_bin`` can go into the runner's options instead.
    """

    def __init__(self, root: Path, scenario: dict | None = None):
        self.root = Path(root)
        self.state = self.root / "standin-state"
        self.state.mkdir(parents=True, exist_ok=True)
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        self.dstack_bin = str(bin_dir / "dstack")
        Path(self.dstack_bin).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
        os.chmod(self.dstack_bin, 0o755)
        self.scenario(scenario or {})

    def scenario(self, scenario: dict) -> None:
        (self.state / "scenario.json").write_text(json.dumps(scenario))

    def env(self, base: dict | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env[STATE_VAR] = str(self.state)
        env["PATH"] = f"{Path(self.dstack_bin).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def calls(self, command: str | None = None) -> list[dict]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        calls = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [c for c in calls if command is None or c["command"] == command]

    def runs(self) -> list[dict]:
        path = self.state / "state.json"
        return json.loads(path.read_text())["runs"] if path.exists() else []

    def run(self, name: str) -> dict:
        return next(r for r in reversed(self.runs()) if r["name"] == name and not r["deleted"])


def use_standin(tmp_path, monkeypatch, token: str) -> StandinDstack:
    """A stand-in dstack with its state in ``tmp_path``, as the tests' ``standin`` fixtures use.

    The runners' shared listing cache lives in the temp folder: it is kept in the test's too.
    """
    import tempfile

    stand = StandinDstack(tmp_path)
    monkeypatch.setenv("DSTACK_STANDIN_STATE", str(stand.state))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("HF_TOKEN", token)
    return stand
