"""Fixtures for the Hugging Face store tests: a clean HF environment, the Hub-compatible test
server (tests/hub_server.py: threads of the test process, so it ends with it) and olah serving
git repos offline (a process owned by the test process: tests/owned_process.py).

Test modules load this with ``pytest_plugins = ["conftest_hf"]``; plain helpers live in
tests/hf_helpers.py.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hf_helpers import CANARY_TOKEN, free_port, offline_hf_env
from hub_server import HubServer
from owned_process import OwnedProcess


@pytest.fixture
def hf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """HF settings for offline tests: no Xet, a temp HF_HOME, the canary token, cwd in tmp.

    huggingface_hub reads its environment at import time, so the constants are patched too.
    """
    offline_hf_env(monkeypatch, tmp_path / "hf_home")
    monkeypatch.chdir(tmp_path)
    return CANARY_TOKEN


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubServer]:
    with HubServer(tmp_path / "hub_repos") as server:
        yield server


# -- olah ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def olah_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """olah (offline mode) serving the git repos under a ``mirrors`` folder; yields (url, mirrors).

    Offline mode plus ``mirrors-path`` makes olah answer repo info, tree, paths-info and resolve
    from local git repos without contacting the Hub (olah/server_mirror.py, mirror/repos.py).
    """
    pytest.importorskip("olah")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    with olah_served(tmp_path_factory.mktemp("olah")) as served:
        yield served


@contextlib.contextmanager
def olah_served(root: Path) -> Iterator[tuple[str, Path]]:
    """olah serving ``root / "mirrors"`` (see ``olah_mirror``), stopped after."""
    mirrors = root / "mirrors"
    mirrors.mkdir()
    port = free_port()
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'repos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{mirrors}"]\n'
        "[accessibility]\n"
        "offline = true\n"
    )
    olah = OwnedProcess(  # dies with this process, even a SIGKILLed pytest
        [sys.executable, "-m", "olah.server", "-c", str(config)],
        root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"{url}/api/whoami-v2", timeout=1)
                break
            except httpx2.TransportError:
                if olah.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"olah did not start on {url} (exit code {olah.process.poll()})")
                time.sleep(0.2)
        yield url, mirrors
    finally:
        olah.stop(timeout_s=10)
