"""Run names and the dstack task a cell submits."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from slm_bench.durations import format_duration, parse_duration
from slm_bench.errors import BenchError
from slm_bench.runners import RunRequest
from slm_bench.runners.dstack.options import StoreTarget

TASK_FILE = "dstack-task.yml"
REPO_MOUNT = "/workflow"

RUN_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
_SLM_LAB_SETUP = (
    "apt-get update && apt-get install -y swig libgl1-mesa-glx libglib2.0-0 libsm6 libxext6"
    " libxrender-dev libgomp1"
)
_SPEC_ARGS = "${SPEC_VARS} ${SPEC_FILE} ${SPEC_NAME} ${LAB_MODE}"
# The embedded runner leaves one folder under data/; upload it like SLM-Lab's --upload-hf does,
# printing SLM-Lab's lines around it (as log records: a line without a timestamp would read as
# the continuation of the one before).
_LOG_RECORD = "printf '%s | INFO | PID:%s | slm_bench:upload | %s\\n' \"$(date '+%F %T')\" \"$$\""
_EMBEDDED_UPLOAD = (
    'FOLDER=$(ls -td data/*/ | head -n 1) && FOLDER="${FOLDER%/}"'
    f' && {_LOG_RECORD} "Uploading ${{FOLDER}} to ${{HF_REPO}}/${{FOLDER}}..."'
    ' && hf upload "${HF_REPO}" "${FOLDER}" "${FOLDER}" --repo-type dataset'
    " --exclude '*_optim.pt' > /dev/null"
    f' && {_LOG_RECORD} "✅ Upload complete: https://huggingface.co/datasets/${{HF_REPO}}/tree/main/${{FOLDER}}"'
)


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower().replace("_", "-"))).strip("-")


def env_short(env_id: str) -> str:
    """SLM-Lab's run-name suffix for ``-s env=ID``: after the last ``/``, before the first ``-``."""
    return env_id.rsplit("/", 1)[-1].split("-", 1)[0].lower()


def base_run_name(spec_name: str, sets: dict[str, str]) -> str:
    """The cell's run name: the spec name (+ SLM-Lab's env suffix when ``-s env=`` is set),
    lower-cased, ``_`` -> ``-``, short enough to take a ``-N`` relaunch suffix."""
    name = _slug(spec_name)
    if sets.get("env"):
        name = f"{name}-{_slug(env_short(sets['env']))}"
    if not name or not name[0].isalpha():
        name = f"run-{name}".rstrip("-")
    if len(name) > 37:  # 41 allowed, 4 kept for "-NNN"
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[:30].rstrip('-')}-{digest}"
    if not RUN_NAME_RE.match(name):
        raise BenchError(f"spec name {spec_name!r}: cannot make a dstack run name from it")
    return name


def next_run_name(current: str, base: str, taken: Iterable[str]) -> str:
    """The next free name after ``current``: base, base-2, base-3, ..."""
    taken = set(taken)
    number = 1
    if current != base and current.startswith(f"{base}-"):
        suffix = current[len(base) + 1 :]
        number = int(suffix) if suffix.isdigit() else 1
    elif current == base:
        number = 1
    while True:
        number += 1
        name = f"{base}-{number}"
        if name not in taken:
            return name


def task_config(opts: dict, request: RunRequest, store: StoreTarget | None) -> dict:
    """The dstack task (SLM-Lab's run-gpu-train.yml shape) for ``request``."""
    repo_dir = opts["repo_dir"]
    in_repo = f"cd {REPO_MOUNT} && " if repo_dir else ""
    if opts["inner_runner"] == "slm-lab":
        launcher = "uv run slm-lab" if repo_dir else "slm-lab"
        main = [f"{in_repo}{launcher} run {_SPEC_ARGS} --upload-hf"]
        default_setup = [_SLM_LAB_SETUP, f"cd {REPO_MOUNT} && uv sync"] if repo_dir else []
    else:
        main = [f"{in_repo}slm-bench run {_SPEC_ARGS}", f"{in_repo}{_EMBEDDED_UPLOAD}"]
        default_setup = [f"cd {REPO_MOUNT} && pip install -e ."] if repo_dir else []
    setup = opts["setup_commands"] if opts["setup_commands"] is not None else default_setup

    max_duration = int(parse_duration(opts["max_duration"], "config.yaml: dstack.max_duration"))
    if request.time_limit_s and request.time_limit_s > 0:
        max_duration = min(max_duration, int(request.time_limit_s))
    config: dict = {"type": "task", "name": base_run_name(request.spec_name, request.sets)}
    config["python"] = "3.12"
    if repo_dir:
        config["repos"] = [f"{Path(repo_dir).expanduser().resolve()}:{REPO_MOUNT}"]
    config["env"] = env_names(opts, store) + ["SPEC_FILE", "SPEC_NAME", "LAB_MODE", "SPEC_VARS"]
    config["commands"] = [*setup, *main]
    config["resources"] = opts["resources"]
    config["spot_policy"] = opts["spot_policy"]
    config["max_duration"] = format_duration(max(60, max_duration))
    if opts["max_price"] is not None:
        config["max_price"] = opts["max_price"]
    if opts["retry_events"]:
        config["retry"] = {
            "on_events": list(opts["retry_events"]),
            "duration": format_duration(
                int(parse_duration(opts["retry_duration"], "config.yaml: dstack.retry_duration"))
            ),
        }
    return config


def env_names(opts: dict, store: StoreTarget | None) -> list[str]:
    """The task's env list: the configured names plus what the store settings provide."""
    names = list(opts["env"])
    for name, value in _store_values(opts, store).items():
        if value and name not in names:
            names.append(name)
    return names


def _store_values(opts: dict, store: StoreTarget | None) -> dict[str, str]:
    """HF_REPO / HF_ENDPOINT from the store settings, unless the env list passes them."""
    if store is None:
        return {}
    values = {"HF_REPO": store.dev_repo, "HF_ENDPOINT": store.endpoint}
    return {k: v for k, v in values.items() if v and k not in opts["env"]}


def submit_values(request: RunRequest, opts: dict, store: StoreTarget | None) -> dict[str, str]:
    """The ``-e KEY=VALUE`` pairs: the cell's spec, mode and sets (never a secret)."""
    for key, value in request.sets.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:/@+,=-]+", f"{key}={value}"):
            raise BenchError(
                f"config.yaml: set {key}={value!r}: dstack passes sets through a shell variable;"
                " expected no spaces or quotes"
            )
    values = {
        "SPEC_FILE": request.spec_file,
        "SPEC_NAME": request.spec_name,
        "LAB_MODE": request.mode,
        "SPEC_VARS": " ".join(f"-s {k}={v}" for k, v in request.sets.items()),
    }
    values.update(_store_values(opts, store))
    return values
