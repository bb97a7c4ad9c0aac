"""What dstack says when a run cannot start, and what the user should do about it.

Two kinds of "not running yet" look alike in ``dstack ps`` (a pending run, "retrying"):

- a **configuration problem**: no fleet the run fits in ("no fleets"), or no backend offers an
  instance for it ("no offers"). Waiting cannot help, yet under a retry policy dstack waits for
  the whole retry duration (1 h by default). The runner stops the run (it costs nothing while
  pending) and fails the cell at once with dstack's reason, its troubleshooting URL and the fix.
- a **capacity wait**: offers exist but none could be provisioned now (spot capacity, "Fleet
  is at capacity"). That can resolve, so the runner keeps waiting and says so.

The texts are dstack 0.22.5's (``jobs_submitted.py`` and ``apply``'s plan).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from slm_bench.runners.dstack.runs import RunState

NO_CAPACITY_REASON = "failed_to_start_due_to_no_capacity"
FLEETS_DOCS = "https://dstack.ai/docs/concepts/fleets"
BACKENDS_DOCS = "https://dstack.ai/docs/concepts/backends"
SERVER_DOCS = "https://dstack.ai/docs/installation"
# (text dstack prints, the kind of problem); a message holding one is a configuration problem.
_CONFIGURATION_TEXTS = (
    ("No matching fleet found", "no fleets"),
    ("The project has no fleets", "no fleets"),
    ("Failed to use specified fleets", "no fleets"),
    ("No offers matching the run requirements", "no offers"),
    ("No matching instance offers available", "no offers"),
    ("offers in fleet", "no offers"),  # "None of the N offers in fleet F could be tried: ..."
)
_URL_RE = re.compile(r"https?://[^\s'\"`)]+")
_SERVER_TEXTS = (
    "Failed to connect to dstack server",
    "No default project",
    "Connection refused",
    "Name or service not known",
    "Invalid token",
    "Unauthorized",
)


def one_line(text: str | None) -> str:
    """dstack's message on one line (its messages put the URL on a line of its own)."""
    return " ".join((text or "").split())


@dataclass(frozen=True)
class Problem:
    """A run that cannot start until the user changes something."""

    kind: str  # no fleets | no offers
    message: str  # dstack's own words, one line, URL included
    url: str | None

    def fix(self, hardware: str, checkout: Path | None) -> str:
        """What to do, in a few words, with the command to run."""
        if self.kind == "no fleets":
            fleet = fleet_file(hardware, checkout)
            return (
                f"create a fleet the run fits in first: dstack apply -f {fleet}"
                f" (it needs a backend: {BACKENDS_DOCS}; fleets: {FLEETS_DOCS}), then rerun"
            )
        return (
            "no backend offers an instance for this task: add a backend to the project"
            f" ({BACKENDS_DOCS}) or loosen the task (dstack.resources, dstack.max_price,"
            " dstack.spot_policy), then rerun"
        )


def fleet_file(hardware: str, checkout: Path | None) -> str:
    """The fleet to create: SLM-Lab's own for GPU runs, else the one shipped with slm-bench's
    dstack profile (SLM-Lab's fleet-gpu.yml asks for a GPU, which a CPU task does not fit)."""
    if hardware == "gpu" and checkout and (checkout / ".dstack" / "fleet-gpu.yml").is_file():
        return str(checkout / ".dstack" / "fleet-gpu.yml")
    return f"profiles/dstack/fleet-{hardware}.yml"


def _problem_in(text: str | None) -> Problem | None:
    flat = one_line(text)
    for marker, kind in _CONFIGURATION_TEXTS:
        if marker in flat:
            url = _URL_RE.search(flat)
            return Problem(kind, flat, url.group(0).rstrip(".") if url else None)
    return None


def configuration_problem(state: RunState) -> Problem | None:
    """The configuration problem a polled run reports, if any (e.g. ``no fleets``)."""
    if state.job_termination_reason != NO_CAPACITY_REASON and state.job_message != "no fleets":
        return None
    problem = _problem_in(state.job_termination_message)
    if problem is None and state.job_message == "no fleets":
        problem = Problem("no fleets", "no fleets", None)
    return problem


def apply_problem(output: str) -> Problem | None:
    """The configuration problem ``dstack apply`` printed with its plan, if any: it knows
    before the server tries ("The project has no fleets", "No matching instance offers")."""
    for line in output.splitlines():
        problem = _problem_in(line)
        if problem is not None:
            rest = output[output.find(line) :].splitlines()[:3]
            flat = one_line(" ".join(part for part in rest if "submitted" not in part))
            url = _URL_RE.search(flat)
            return Problem(problem.kind, flat, url.group(0).rstrip(".") if url else problem.url)
    return None


def waiting_for_capacity(state: RunState) -> bool:
    """Pending under a retry policy after an attempt found no capacity (spot, full fleet)."""
    return not state.finished and state.job_termination_reason == NO_CAPACITY_REASON


def waiting_reason(state: RunState) -> str:
    """Why a run that is not running yet is waiting, e.g. ``no capacity: Failed to provision
    in fleet 'f': tried 3 of 3 offers, all failed. See https://...``."""
    if state.status in ("running", "terminating") or state.finished:
        return ""
    parts = [state.job_message if state.job_message not in (None, state.status) else None]
    if state.job_termination_message:
        parts.append(one_line(state.job_termination_message))
    return ": ".join(part for part in parts if part)


_REPO_TEXTS = ("No remote branch is configured", "Git repo not found", "Git credentials")


def repo_hint(message: str) -> str | None:
    """Advice when ``dstack apply`` cannot use the checkout as the task's repo: dstack clones
    the branch's remote on the box and applies the local diff, so the branch must be pushed."""
    if not any(text in message for text in _REPO_TEXTS):
        return None
    return (
        "dstack mounts the checkout through its git remote: it must be a git repo whose branch"
        " is pushed (git push -u origin BRANCH) and readable with your git credentials"
    )


def server_problem(message: str) -> bool:
    """Whether a failed CLI call means the server cannot be reached or the CLI is not set up."""
    return any(text in message for text in _SERVER_TEXTS)


def server_url() -> str | None:
    """The URL the dstack CLI talks to: DSTACK_SERVER_URL, else the default (or DSTACK_PROJECT)
    project in ~/.dstack/config.yml."""
    if os.environ.get("DSTACK_SERVER_URL"):
        return os.environ["DSTACK_SERVER_URL"]
    try:
        import yaml

        path = Path(os.environ.get("HOME", "~")).expanduser() / ".dstack" / "config.yml"
        projects = (yaml.safe_load(path.read_text()) or {}).get("projects") or []
    except (OSError, ValueError, AttributeError):
        return None
    wanted = os.environ.get("DSTACK_PROJECT")
    for project in projects:
        if isinstance(project, dict) and (
            project.get("name") == wanted or (not wanted and project.get("default"))
        ):
            return project.get("url")
    return None


def server_hint(message: str) -> str:
    """The failure line's advice when the server cannot be reached."""
    if _URL_RE.search(message):
        where = ""  # dstack's message names the URL it tried
    else:
        tried = server_url()
        where = f"tried {tried}; " if tried else "no server configured for the dstack CLI; "
    return (
        f"{where}start one with `dstack server` (it prints the admin token), or point the CLI"
        " at yours: `dstack project add --name main --url URL --token TOKEN`"
        f" ({SERVER_DOCS})"
    )
