"""Helpers for the Hugging Face store tests (fixtures are in tests/conftest_hf.py)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

# Underscores keep it from looking like a real token, so only masking the known value hides it.
CANARY_TOKEN = "hf_canary_do_not_leak_0123456789"


def offline_hf_env(patch, home: Path, token: str = CANARY_TOKEN) -> None:
    """HF settings for offline tests, for this process and the subprocesses it starts: plain
    HTTP uploads (no Xet, as a local server needs), a temp HF_HOME, no progress bars, the
    canary token, no inherited endpoint. huggingface_hub reads some of them at import time, so
    its constants are patched too. ``patch`` is a pytest MonkeyPatch."""
    from huggingface_hub import constants

    patch.setenv("HF_HUB_DISABLE_XET", "1")
    patch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    patch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    patch.setenv("HF_HOME", str(home))
    patch.setattr(constants, "HF_HOME", str(home))
    patch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    patch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    patch.setenv("HF_TOKEN", token)
    patch.delenv("HF_ENDPOINT", raising=False)


def fast_options(endpoint: str, **extra: object) -> dict:
    """Store options with quick retries so fault tests stay fast."""
    return {"endpoint": endpoint, "max_retries": 2, "backoff_s": 0.01, "max_wait_s": 1.0, **extra}


def make_run_folder(parent: Path, name: str, seed: int = 0) -> Path:
    """A small SLM-Lab-shaped run folder: info/ json, a log, a binary model and its optimizer."""
    folder = parent / name
    (folder / "info").mkdir(parents=True)
    (folder / "info" / f"{name}_t0_trial_metrics.json").write_text(f'{{"seed": {seed}}}\n')
    (folder / "log").mkdir()
    (folder / "log" / f"{name}_t0_s0.log").write_text(f"trial_metrics: seed {seed}\n" * 20)
    (folder / "model").mkdir()
    (folder / "model" / f"{name}_t0_s0_net_model.pt").write_bytes(bytes([seed, 0, 1, 2]) * 512)
    (folder / "model" / f"{name}_t0_s0_net_optim.pt").write_bytes(b"\0optimizer" * 64)
    return folder


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git_dataset_repo(mirrors: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A git repo laid out as olah's offline mirrors expect: ``mirrors/datasets/ORG/NAME``."""
    repo = mirrors / "datasets" / repo_id
    repo.mkdir(parents=True)
    for path, content in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(content)
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env = {**os.environ, **identity, "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "runs"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return repo
