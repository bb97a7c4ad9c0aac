"""``dstack`` subcommands as the runner uses them: the contract a user sees, so a stand-in
executable can play the server in tests."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.errors import BenchError
from slm_bench.runners.dstack.runs import RunState, parse_ps_output

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EVENT_STATUS_RE = re.compile(
    r"Run status changed \w+ -> (?P<status>\w+)(?:\. Termination reason: (?P<reason>\w+))?"
)


class DstackCliError(Exception):
    """A dstack call that failed (non-zero exit, timeout, unreadable output)."""

    def __init__(self, message: str, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


def last_line(text: str) -> str:
    """The CLI's last message on one line: its last paragraph (the CLI wraps long messages at
    the terminal width, so the last line alone can be a fragment such as ``variable.``)."""
    paragraphs = re.split(r"\n\s*\n", ANSI_RE.sub("", text).strip())
    words = " ".join(paragraphs[-1].split()) if paragraphs else ""
    return words[:500]


class DstackCli:
    """``dstack`` subcommands as the runner uses them; output never reaches a message unmasked."""

    def __init__(
        self,
        dstack_bin: str,
        secrets: Iterable[str] = (),
        timeout_s: float = 300,
        named: str = "dstack_bin",
    ):
        self.dstack_bin = dstack_bin
        self.named = named  # where dstack_bin came from, for the line when it is not found
        self.secrets = [s for s in secrets if s and len(s) >= 4]
        self.timeout_s = timeout_s

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _call(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> str:
        command = [self.dstack_bin, *args]
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise BenchError(
                f"{self.named}: {self.dstack_bin!r} not found (install dstack or set dstack_bin)"
            ) from None
        except subprocess.TimeoutExpired:
            raise DstackCliError(
                f"`dstack {args[0]}` timed out after {self.timeout_s:.0f}s"
            ) from None
        if done.returncode != 0:
            last = self.mask(last_line(done.stdout + "\n" + done.stderr))
            raise DstackCliError(
                f"`dstack {args[0]}` exited {done.returncode}: {last}",
                not_found=last.endswith("not found"),
            )
        return done.stdout

    def apply(self, task_file: Path, name: str, values: dict[str, str], env: dict[str, str]) -> str:
        """Submit detached; ``values`` go on the command line (never secrets), ``env`` only
        into the CLI's environment. Returns what it printed (the plan and its warnings)."""
        args = ["apply", "-f", task_file.name, "-y", "-d", "-n", name]
        for key, value in values.items():
            args += ["-e", f"{key}={value}"]
        call_env = {**os.environ, **env} if env else None
        return self.mask(self._call(*args, cwd=task_file.parent, env=call_env))

    def ps(self) -> list[RunState]:
        """The runs ``ps -a --json`` lists (newest first), as safe summaries only."""
        text = self._call("ps", "-a", "--json")
        try:
            return [RunState.from_json(run) for run in parse_ps_output(text)]
        except (ValueError, TypeError, AttributeError) as error:
            raise DstackCliError(f"`dstack ps -a --json`: {error}") from None

    def logs(self, name: str, dest: Path) -> None:
        """``dstack logs NAME`` into ``dest`` (through a temp sibling, then a rename)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.fetch")
        try:
            with partial.open("wb") as out:
                done = subprocess.run(
                    [self.dstack_bin, "logs", name],
                    stdout=out,
                    stderr=subprocess.PIPE,
                    timeout=self.timeout_s,
                    stdin=subprocess.DEVNULL,
                )
            if done.returncode != 0:
                last = last_line(
                    partial.read_text(errors="replace") + done.stderr.decode(errors="replace")
                )
                raise DstackCliError(
                    f"`dstack logs {name}` exited {done.returncode}: {self.mask(last)}",
                    not_found=last.endswith("not found"),
                )
            if self.secrets:
                text = partial.read_text(encoding="utf-8", errors="replace")
                masked = self.mask(text)
                if masked != text:
                    partial.write_text(masked, encoding="utf-8")
            os.replace(partial, dest)
        except subprocess.TimeoutExpired:
            raise DstackCliError(f"`dstack logs {name}` timed out") from None
        finally:
            partial.unlink(missing_ok=True)

    def stop(self, name: str) -> bool:
        """Stop a run; False when the server does not know the name."""
        try:
            self._call("stop", "-y", name)
        except DstackCliError as error:
            if error.not_found:
                return False
            raise
        return True

    def last_event_status(self, name: str) -> tuple[str, str | None] | None:
        """(status, termination reason) from the run's newest status-change event, or None when
        the server has no such run."""
        try:
            text = self._call("event", "--target-run", name)
        except DstackCliError as error:
            if error.not_found:
                return None
            raise
        matches = list(EVENT_STATUS_RE.finditer(text))
        if not matches:
            return ("submitted", None) if f"[run {name}]" in text else None
        # The reason comes with the change to TERMINATING, before the final status.
        reasons = [m["reason"].lower() for m in matches if m["reason"]]
        return matches[-1]["status"].lower(), (reasons[-1] if reasons else None)


class SharedListing:
    """One ``dstack ps`` answer shared by every runner process of this user and dstack setup.

    Each cell's runner polls on its own, but ``ps -a`` lists all runs and one call of the CLI
    costs seconds of CPU: a runner reuses a listing another one fetched less than ``max_age_s``
    ago (and after ``not_before``, e.g. its own ``apply``). The lock makes concurrent pollers
    wait for the one fetching instead of calling too. Only :class:`RunState` summaries are
    cached (``ps`` output holds env values), in a per-user folder with owner-only access.
    """

    def __init__(self, cli: DstackCli, max_age_s: float, folder: Path | None = None):
        self.cli = cli
        self.max_age_s = max_age_s
        if folder is None:
            folder = Path(tempfile.gettempdir()) / f"slm-bench-dstack-{os.getuid()}"
        key = "\0".join(
            [
                shutil.which(cli.dstack_bin) or cli.dstack_bin,
                os.environ.get("HOME", ""),
                os.environ.get("DSTACK_PROJECT", ""),
            ]
        )
        self.path = folder / f"ps-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"

    def runs(self, not_before: float = 0.0, max_age_s: float | None = None) -> list[RunState]:
        """A listing fetched after ``not_before`` (a ``time.time()``) and at most ``max_age_s``
        (default: the listing's) old."""
        max_age = self.max_age_s if max_age_s is None else max_age_s
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cached = self._read()
            now = time.time()
            age = now - cached["fetched_at"] if cached else math.inf
            if cached and cached["fetched_at"] >= not_before and age < max_age:
                return [RunState.from_dict(run) for run in cached["runs"]]
            states = self.cli.ps()
            fetched = {"fetched_at": now, "runs": [state.to_dict() for state in states]}
            write_text(self.path, json.dumps(fetched))
            os.chmod(self.path, 0o600)
            return states

    def _read(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(data, dict) and isinstance(data.get("runs"), list)
        return data if ok and isinstance(data.get("fetched_at"), int | float) else None
