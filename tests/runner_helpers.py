"""A run request and a process runner whose command is a small Python program, for the runner
tests that need no SLM-Lab."""

from __future__ import annotations

import sys
from pathlib import Path

from slm_bench.formats.spec import resolve_spec
from slm_bench.runners import RunRequest
from slm_bench.runners.embedded import plan_training
from slm_bench.runners.process import ProcessRunner


def request(tmp_path: Path, time_limit_s: float = 30.0) -> RunRequest:
    """One cell's request with its work folder, log and journal under ``tmp_path``."""
    return RunRequest(
        spec_file="specs/x.yaml",
        spec_name="x",
        sets={"max_frame": "2000"},
        workdir=tmp_path / "work",
        log_path=tmp_path / "train.log.partial",
        journal_path=tmp_path / "journal.json",
        time_limit_s=time_limit_s,
        cell="CartPole-v1/ppo",
    )


def python_runner(code: str) -> ProcessRunner:
    """A runner whose command is a small Python program (it ignores the SLM-Lab arguments)."""
    return ProcessRunner(name="embedded", command=[sys.executable, "-c", code])


def planned(spec_file: Path, name: str, sets: dict | None = None, **changes: object):
    """The embedded runner's plan of SLM-Lab spec ``name``, with ``changes`` (dotted spec paths,
    e.g. ``agent.algorithm.gamma``) set in the resolved spec first."""
    spec = resolve_spec(spec_file, name, sets or {})
    for path, value in changes.items():
        node = spec
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return plan_training(spec, str(spec_file), name)
