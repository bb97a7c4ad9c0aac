"""A real headless Chromium, driven through chromedriver's W3C WebDriver HTTP API (no client
library).

CI installs the browser with ``apt-get install -y chromium chromium-driver`` (Debian); ``browser()``
returns None when either is missing, so a test can skip saying how to get them.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from owned_process import OwnedProcess

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
INSTALL_HINT = "needs chromium and chromedriver: apt-get install -y chromium chromium-driver"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One Chromium session; use as a context manager."""

    def __init__(self, chromium: str, chromedriver: str, width: int = 1400, height: int = 1000):
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="slm-bench-chromium-")
        # chromedriver and the Chromium it starts die with this process, even a SIGKILLed
        # pytest (tests/owned_process.py).
        self.driver = OwnedProcess(
            [chromedriver, f"--port={self.port}"],
            Path(self.profile),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.driver.kill()
                shutil.rmtree(self.profile, ignore_errors=True)
                raise RuntimeError("chromedriver did not start within 30 s")
            time.sleep(0.2)
        options = {
            "binary": chromium,
            "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                     f"--window-size={width},{height}"],
        }  # fmt: skip
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 60):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("value", {})
            raise RuntimeError(f"webdriver {path}: {detail.get('message', error)}") from None

    def _session(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def run(self, script: str, *args):
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find_all(self, xpath: str) -> list[dict]:
        return self._session("POST", "/elements", {"using": "xpath", "value": xpath})

    def wait_for(self, xpath: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.find_all(xpath)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no element {xpath} after {timeout} s")
            time.sleep(0.2)

    def click(self, element: dict) -> None:
        self._session("POST", f"/element/{element[ELEMENT]}/click", {})

    def frame(self, element: dict | None) -> None:
        """Switch into an iframe (None: back to the top document)."""
        self._session("POST", "/frame", {"id": element})

    def screenshot(self, path: Path) -> None:
        Path(path).write_bytes(base64.b64decode(self._session("GET", "/screenshot")))

    def close(self) -> None:
        try:
            self._session("DELETE", "")
        finally:
            self.driver.stop(timeout_s=10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def browser(**kwargs) -> Browser | None:
    """A started headless Chromium, or None when Chromium or chromedriver is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        return None
    return Browser(chromium, chromedriver, **kwargs)
