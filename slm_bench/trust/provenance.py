"""What produced a result: slm-bench, the runner and its versions, Python, the machine, the seeds.

``collect_provenance`` returns one JSON-ready dict. The pipeline keeps it in the cell's
``run.json`` and ``metrics.json`` and as ``provenance.json`` at the top of the run folder, beside
SLM-Lab's own files (never inside them), so the folder in the store says how it was made.

For a remote (dstack) run the machine that trained is not this one: the GPU and instance type come
from dstack's record of the run (the runner's ``extra``), and the CPU fields stay unknown unless the
remote command wrote its own ``provenance.json`` into the folder (``python -m
slm_bench.trust.provenance --runner embedded --run-folder data/FOLDER --output
data/FOLDER/provenance.json``), which is then read back instead of guessed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from slm_bench import __version__
from slm_bench.atomic import write_json
from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import load_json, read_run_folder
from slm_bench.formats.session_scores import session_seeds

PROVENANCE_FILE = "provenance.json"
# The embedded runner's packages; their versions are those of the Python that runs it.
EMBEDDED_PACKAGES = ("stable-baselines3", "gymnasium", "torch", "numpy")
# The embedded runner announces its seeds in the trial log: "..., seeds [1, 1001, 2001]".
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_GIT_TIMEOUT_S = 10


def _run(argv: list[str], cwd: Path | None = None) -> str | None:
    """stdout of a short command, or None when it is missing or fails (provenance never fails)."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(path: Path) -> dict:
    """``{"commit", "dirty"}`` of the git work tree holding ``path`` (None when not in one)."""
    commit = _run(["git", "-C", str(path), "rev-parse", "HEAD"])
    if not commit:
        return {"commit": None, "dirty": None}
    status = _run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"])
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def slm_bench_info() -> dict:
    """slm-bench's version, and its git commit when it runs from a checkout."""
    return {"version": __version__, **git_commit(_PACKAGE_DIR)}


def cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        return _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    return platform.processor() or None


def local_gpus() -> list[str]:
    """NVIDIA GPU names from ``nvidia-smi`` (empty without one); torch is not imported for this."""
    names = _run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    return [name.strip() for name in names.splitlines() if name.strip()] if names else []


def machine_info() -> dict:
    """This machine: OS, CPU model, logical cores (and how many this process may use), GPUs;
    under Slurm also the job id, node and attempt."""
    from slm_bench.slurm.job import current_job

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    gpus = local_gpus()
    job = current_job()
    return {
        "where": "slurm" if job else "local",
        # the Slurm job that trained (id, node, attempt), when it ran under Slurm
        **({"slurm": job.as_record()} if job else {}),
        "system": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_available": available,
        "gpu": ", ".join(gpus) or None,
        "instance_type": None,
    }


def remote_machine(extra: dict) -> dict:
    """A dstack run's machine, as dstack recorded it (the CPU is not known from here)."""
    return {
        "where": "dstack",
        "system": None,
        "cpu_model": None,
        "cpu_cores": None,
        "cpu_cores_available": None,
        "gpu": extra.get("gpu"),
        "instance_type": extra.get("instance"),
        "backend": extra.get("backend"),
        "spot": extra.get("spot"),
    }


def _checkout_version(root: Path) -> str | None:
    pyproject = root / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    version = project.get("version")
    return str(version) if version else None


def runner_info(
    runner: str,
    run_folder: Path | None = None,
    checkout: Path | None = None,
    remote_runner: str | None = None,
) -> dict:
    """The runner and its version.

    slm-lab: SLM-Lab's git sha as SLM-Lab recorded it in the run's spec (``meta.git_sha``), else
    the checkout's HEAD, and the checkout's package version. embedded: the versions of
    Stable-Baselines3, Gymnasium, torch and NumPy it trains with. dstack: the runner it runs
    remotely, described the same way (package versions only when they are this Python's).
    """
    info: dict = {"name": runner}
    inner = remote_runner if runner == "dstack" else runner
    if runner == "dstack":
        info["remote_runner"] = remote_runner
    if inner == "slm-lab":
        sha = _recorded_git_sha(run_folder)
        head = git_commit(checkout) if checkout else {"commit": None, "dirty": None}
        info["slm_lab_git_sha"] = sha or head["commit"]
        info["slm_lab_git_sha_source"] = (
            "run spec meta.git_sha" if sha else "checkout HEAD" if head["commit"] else None
        )
        info["slm_lab_version"] = _checkout_version(checkout) if checkout else None
    elif inner == "embedded":
        info["packages"] = {name: package_version(name) for name in EMBEDDED_PACKAGES}
    return info


def _recorded_git_sha(run_folder: Path | None) -> str | None:
    if run_folder is None:
        return None
    try:
        meta = read_run_folder(run_folder).spec.get("meta") or {}
    except BenchError:
        return None
    sha = meta.get("git_sha")
    return str(sha) if sha else None


def collect_provenance(
    runner: str,
    run_folder: str | os.PathLike | None = None,
    checkout: str | os.PathLike | None = None,
    extra: dict | None = None,
    remote_runner: str | None = None,
) -> dict:
    """Everything that says what produced a run, as one JSON-ready dict.

    ``run_folder`` is the run's local folder (``data/FOLDER``) when there is one: seeds and
    SLM-Lab's git sha are read from it, and a ``provenance.json`` the remote machine wrote there
    supplies that machine's fields. ``extra`` is the runner's ``RunResult.extra`` (dstack: gpu,
    instance, backend, spot). ``checkout`` is the SLM-Lab checkout of the slm-lab runner.
    """
    folder = Path(run_folder) if run_folder is not None else None
    extra = extra or {}
    checkout_path = Path(checkout) if checkout is not None else None
    if runner == "dstack":
        machine = remote_machine(extra)
        written = _written_provenance(folder)
        if written:  # the remote machine described itself: trust it over what dstack lists
            machine = {**machine, **{k: v for k, v in written.get("machine", {}).items() if v}}
            machine["where"] = "dstack"
    else:
        machine = machine_info()
    return {
        "slm_bench": slm_bench_info(),
        "runner": runner_info(runner, folder, checkout_path, remote_runner),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "machine": machine,
        **session_seeds(folder),
        "collected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _written_provenance(folder: Path | None) -> dict | None:
    path = folder / PROVENANCE_FILE if folder else None
    if path is None or not path.is_file():
        return None
    data = load_json(path)
    return data if isinstance(data, dict) else None


def write_provenance(run_folder: str | os.PathLike, provenance: dict) -> Path:
    """``provenance.json`` at the top of the run folder, beside SLM-Lab's files."""
    path = Path(run_folder) / PROVENANCE_FILE
    write_json(path, provenance)
    return path


def read_provenance(run_json: dict, run_folder: Path | None = None) -> dict | None:
    """A cell's provenance: from its run marker, else its run folder's ``provenance.json``."""
    if isinstance(run_json.get("provenance"), dict):
        return run_json["provenance"]
    return _written_provenance(run_folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slm_bench.trust.provenance",
        description="Print (or write) what produced a run: software, versions, machine, seeds.",
    )
    parser.add_argument("--runner", required=True, choices=["embedded", "slm-lab", "dstack"])
    parser.add_argument("--run-folder", type=Path, help="the run's data/FOLDER")
    parser.add_argument("--checkout", type=Path, help="the SLM-Lab checkout (slm-lab runner)")
    parser.add_argument("--output", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    import json

    provenance = collect_provenance(args.runner, args.run_folder, args.checkout)
    if args.output:
        write_json(args.output, provenance)
    else:
        print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
