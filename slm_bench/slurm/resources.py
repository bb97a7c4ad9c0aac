"""What a training or search job asks Slurm for, from the rule and the cell's last measurement.

The Slurm executor plugin turns Snakemake resources into sbatch flags: ``cpus_per_task``
(``--cpus-per-task``), ``mem_mb`` (``--mem``), ``runtime`` (``-t``, minutes), ``gres``
(``--gres``), ``slurm_partition`` (``-p``), ``slurm_account`` (``-A``), ``qos`` (``--qos``) and
``slurm_extra`` (appended as is). Snakemake evaluates a resource function for every job while it
plans, so this reads each rule's benchmark folder once (one directory walk) and a TSV only for
the cells that have one.
"""

from __future__ import annotations

import csv
import math
import os
import shlex
from functools import lru_cache
from pathlib import Path

from slm_bench.config_model import Hardware, SlurmOptions
from slm_bench.errors import BenchError

BENCHMARKS = Path("results/benchmarks")
# SLM-Lab's rule: no run longer than 6 h; a cluster job never asks for more.
MAX_RUNTIME_MIN = 6 * 60
MEM_STEP_MB = 256  # requests are rounded up to this
# Flags the profile sets from the rules and the config: in slurm.extra they would be overridden
# or make sbatch refuse the job, so the config check names them.
MANAGED_FLAGS = {
    "--mem": "mem_mb", "--mem-per-cpu": "mem_mb", "--cpus-per-task": "the cell's sessions",
    "-c": "the cell's sessions", "--time": "time_limit", "-t": "time_limit",
    "--partition": "slurm.partition", "-p": "slurm.partition", "--account": "slurm.account",
    "-A": "slurm.account", "--qos": "slurm.qos", "--gres": "slurm.gpu", "--gpus": "slurm.gpu",
    "--job-name": "the executor", "-J": "the executor", "--output": "the executor",
    "-o": "the executor", "--comment": "the executor", "--ntasks": "the executor",
    "-n": "the executor", "--chdir": "the executor", "-D": "the executor",
}  # fmt: skip


def check_extra(extra: str, source: str) -> list[str]:
    """``slurm.extra`` as sbatch arguments; one line naming the key when it cannot be used."""
    try:
        args = shlex.split(extra)
    except ValueError as error:
        raise BenchError(f"{source}: slurm.extra: {error} in {extra!r}") from None
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in MANAGED_FLAGS:
            raise BenchError(
                f"{source}: slurm.extra: {flag} is set by the Slurm profile (from "
                f"{MANAGED_FLAGS[flag]}); remove it from slurm.extra"
            )
    return args


@lru_cache(maxsize=8)
def measured_files(rule: str, root: str = ".") -> frozenset[str]:
    """Every benchmark TSV of ``rule`` (relative paths), found with one walk of its folder."""
    folder = Path(root) / BENCHMARKS / rule
    found: set[str] = set()
    for parent, _dirs, files in os.walk(folder):
        found.update(str(Path(parent, name).relative_to(root)) for name in files)
    return frozenset(found)


@lru_cache(maxsize=4096)
def measured_peak_mb(tsv: str) -> float | None:
    """The job's peak resident memory (max_rss, MB) from Snakemake's benchmark TSV, or None."""
    try:
        with open(tsv, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    peaks = []
    for row in rows:
        try:
            peaks.append(float(row.get("max_rss") or "nan"))
        except ValueError:
            continue
    peaks = [peak for peak in peaks if math.isfinite(peak) and peak > 0]
    return max(peaks) if peaks else None


def memory_mb(rule: str, env: str, algo: str, options: SlurmOptions) -> int:
    """The cell's measured peak times the margin, else the configured default; rounded up."""
    tsv = str(BENCHMARKS / rule / env / f"{algo}.tsv")
    peak = measured_peak_mb(tsv) if tsv in measured_files(rule) else None
    wanted = peak * options.mem_margin if peak is not None else options.mem_mb
    return int(math.ceil(wanted / MEM_STEP_MB) * MEM_STEP_MB)


def runtime_minutes(time_limit_s: float) -> int:
    """The job's wall time: the config's time_limit, at most 6 h (SLM-Lab's rule)."""
    return max(1, min(MAX_RUNTIME_MIN, math.ceil(time_limit_s / 60)))


def hardware(env_id: str, spec_body: dict | None, options: SlurmOptions) -> tuple[str, str]:
    """(cpu | gpu, why): ``slurm.env_hardware``, ``slurm.hardware``, else the dstack route's
    rule."""
    from slm_bench.runners.dstack.task import choose_hardware

    if env_id in options.env_hardware:
        return options.env_hardware[env_id].value, f"slurm.env_hardware[{env_id}]"
    if options.hardware is not Hardware.AUTO:
        return options.hardware.value, "slurm.hardware"
    return choose_hardware(env_id, spec_body, {"hardware": "auto", "env_hardware": {}})


def spec_body(cell) -> dict | None:
    """The cell's spec as written (anchors merged; cached per file) for the hardware choice."""
    from slm_bench.formats.spec import raw_spec

    try:
        return raw_spec(cell.spec_path, cell.spec_name)
    except (BenchError, OSError):
        return None


def gres(env_id: str, spec_body: dict | None, options: SlurmOptions) -> str:
    """``gpu:N`` for a GPU cell, else "" (the plugin adds no --gres for an empty value)."""
    kind, _why = hardware(env_id, spec_body, options)
    return f"gpu:{options.gpu}" if kind == "gpu" else ""


def static_resources(options: SlurmOptions) -> dict[str, str]:
    """The same for every cluster job: partition, account, QoS and extra flags, when set."""
    wanted = {
        "slurm_partition": options.partition,
        "slurm_account": options.account,
        "qos": options.qos,
        "slurm_extra": options.extra,
    }
    return {resource: value for resource, value in wanted.items() if value}
