"""The Slurm commands slm-bench runs itself, each with a timeout and one-line errors.

The executor plugin submits (``sbatch``) and polls (``sacct``); these are the rest: the check
before submitting (is the controller there?), one job's details at its SIGTERM, the states of
the recorded jobs for ``status`` (one ``sacct`` call for all of them) and ``scancel``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

SACCT_FIELDS = ("JobIDRaw", "State", "NodeList", "Elapsed", "Timelimit")


class SlurmError(Exception):
    """A Slurm command that is missing, failed or did not answer in time (one line)."""


def run(argv: list[str], timeout_s: float) -> str:
    """stdout of a Slurm command; SlurmError with its own error line otherwise."""
    if shutil.which(argv[0]) is None:
        raise SlurmError(
            f"{argv[0]}: not found (is this a Slurm login node? PATH={os.environ.get('PATH', '')})"
        )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{' '.join(argv[:2])}: no answer within {timeout_s:g} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise SlurmError(f"{argv[0]}: {lines[-1] if lines else f'exit code {done.returncode}'}")
    return done.stdout


def check_controller(timeout_s: float) -> None:
    """Fail in one line, within ``timeout_s``, when slurmctld does not answer."""
    try:
        run(["scontrol", "ping"], timeout_s)
        out = run(["sinfo", "-h", "-o", "%P"], timeout_s)
    except SlurmError as error:
        conf = os.environ.get("SLURM_CONF", "the default slurm.conf")
        raise SlurmError(f"Slurm controller unreachable ({error}; config: {conf})") from None
    if not out.strip():
        raise SlurmError("Slurm controller answers but lists no partition (sinfo)")


def show_job(job_id: str, timeout_s: float = 10) -> dict[str, str]:
    """``scontrol show job -o``'s KEY=VALUE fields of one job."""
    out = run(["scontrol", "show", "job", "-o", str(job_id)], timeout_s)
    fields = {}
    for token in out.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def job_states(job_ids: list[str], timeout_s: float = 30) -> dict[str, dict[str, str]]:
    """``{job id: {State, NodeList, Elapsed, Timelimit}}`` from one ``sacct`` call."""
    if not job_ids:
        return {}
    out = run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", ",".join(SACCT_FIELDS)],
        timeout_s,
    )
    states = {}
    for line in out.splitlines():
        values = line.split("|")
        if len(values) == len(SACCT_FIELDS):
            states[values[0]] = dict(zip(SACCT_FIELDS[1:], values[1:], strict=True))
    return states


def cancel(job_ids: list[str], timeout_s: float = 60) -> None:
    if job_ids:
        run(["scancel", *job_ids], timeout_s)
