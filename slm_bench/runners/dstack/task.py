"""Run names and the dstack task a cell submits.

With an SLM-Lab checkout the task is the checkout's own ``.dstack/run-{hw}-{mode}.yml``, exactly
as ``slm-lab run-remote`` applies it: the checkout mounted at /workflow, the same env variables,
the run name the journal records. Without one it is the embedded runner's task: the same
resources as SLM-Lab's file for that hardware, slm-bench installed on the remote box, the spec
file uploaded beside it. The options' overrides (resources, price, spot, duration, retry) go on
top and are listed in :attr:`TaskPlan.overrides`, which the runner prints.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.durations import format_duration, parse_duration
from slm_bench.errors import BenchError
from slm_bench.formats.naming import env_short
from slm_bench.runners import RunRequest
from slm_bench.runners.dstack.options import Sources, StoreTarget

TASK_FILE = "dstack-task.yml"
REPO_MOUNT = "/workflow"
SOURCE_MOUNT = "/slm-bench"
# The commands that run the spec (the rest is setup, which dstack.setup_commands replaces).
MAIN_COMMANDS = {"slm-lab": 1, "embedded": 2}
RUN_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
SPEC_ARGS = "${SPEC_VARS} ${SPEC_FILE} ${SPEC_NAME} ${LAB_MODE}"
# SLM-Lab 5.3's .dstack/run-{hw}-{mode}.yml (resources and limits), for the embedded task and for
# the cost comparison when there is no checkout to read them from.
SLM_LAB_TASKS: dict[tuple[str, str], dict] = {
    ("cpu", "train"): {
        "resources": {"gpu": 0, "cpu": "2..", "memory": "4GB.."},
        "spot_policy": "on-demand",
        "max_duration": "4h",
        "max_price": 0.15,
        "retry": {"on_events": ["no-capacity"], "duration": "1h"},
    },
    ("cpu", "search"): {
        "resources": {"gpu": 0, "cpu": "8..", "memory": "16GB.."},
        "spot_policy": "on-demand",
        "max_duration": "4h",
        "max_price": 0.3,
        "retry": {"on_events": ["no-capacity"], "duration": "1h"},
    },
    ("gpu", "train"): {
        "resources": {"gpu": {"memory": "20GB..", "count": 1}, "memory": "32GB.."},
        "spot_policy": "auto",
        "max_duration": "6h",
        "max_price": 0.5,
        "retry": {"on_events": ["no-capacity"], "duration": "1h"},
    },
    ("gpu", "search"): {
        "resources": {"gpu": "1..", "memory": "20GB.."},
        "spot_policy": "on-demand",
        "max_duration": "6h",
        "max_price": 0.25,
        "retry": {"on_events": ["no-capacity"], "duration": "1h"},
    },
}
# What `slm-lab run-remote` quotes per hour for each task (its docstring).
TYPICAL_PRICE = {
    ("cpu", "train"): 0.13,
    ("cpu", "search"): 0.20,
    ("gpu", "train"): 0.39,
    ("gpu", "search"): 0.50,
}
# Values run-remote sets besides the spec (profiling off; PROF_* only when not set already).
RUN_REMOTE_VALUES = {"PROFILE": "", "PROF_SKIP": "500", "PROF_ACTIVE": "20"}
_RUN_REMOTE_DEFAULTED = ("PROF_SKIP", "PROF_ACTIVE")
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# The embedded runner leaves one folder under data/; upload it like SLM-Lab's --upload-hf does,
# printing SLM-Lab's lines around it (as log records: a line without a timestamp would read as
# the continuation of the one before). provenance.json (this machine's CPU, packages, seeds) goes
# into the folder first; a failure to write it never costs the run's upload.
_LOG_RECORD = "printf '%s | INFO | PID:%s | slm_bench:upload | %s\\n' \"$(date '+%F %T')\" \"$$\""
EMBEDDED_UPLOAD = (
    'FOLDER=$(ls -td data/*/ | head -n 1) && FOLDER="${FOLDER%/}"'
    ' && { python -m slm_bench.trust.provenance --runner embedded --run-folder "${FOLDER}"'
    ' --output "${FOLDER}/provenance.json" || true; }'
    f' && {_LOG_RECORD} "Uploading ${{FOLDER}} to ${{HF_REPO}}/${{FOLDER}}..."'
    ' && hf upload "${HF_REPO}" "${FOLDER}" "${FOLDER}" --repo-type dataset'
    " --exclude '*_optim.pt' > /dev/null"
    f' && {_LOG_RECORD} "✅ Upload complete: https://huggingface.co/datasets/${{HF_REPO}}/tree/main/${{FOLDER}}"'
)


# -- names ------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower().replace("_", "-"))).strip("-")


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
    while True:
        number += 1
        name = f"{base}-{number}"
        if name not in taken:
            return name


# -- hardware ---------------------------------------------------------------------------------


def task_mode(mode: str) -> str:
    """run-remote's rule: only search uses the search task; everything else the train one."""
    return "search" if mode == "search" else "train"


def choose_hardware(env_id: str, spec_body: dict | None, opts: dict) -> tuple[str, str]:
    """(cpu | gpu, why) for a cell, as SLM-Lab chooses (``run-remote`` vs ``--gpu``) unless the
    options say otherwise."""
    if env_id in opts["env_hardware"]:
        return opts["env_hardware"][env_id], f"dstack.env_hardware[{env_id}]"
    if opts["hardware"] != "auto":
        return opts["hardware"], "dstack.hardware"
    if env_id.startswith("ALE/"):
        return "gpu", "image env (Atari)"
    if env_id.startswith("playground/"):
        return "gpu", "GPU simulation (MuJoCo Playground)"
    net = (spec_body or {}).get("agent", {}).get("net") if isinstance(spec_body, dict) else None
    if net and re.search(r"conv", yaml.safe_dump(net), re.IGNORECASE):
        return "gpu", "image env (convolutional net)"
    return "cpu", "vector-state env"


# -- the task ---------------------------------------------------------------------------------


@dataclass
class TaskPlan:
    """The task a cell submits, where it came from, and what the options changed in it."""

    config: dict
    hardware: str
    why: str  # why that hardware
    inner_runner: str  # slm-lab | embedded
    source: str  # the SLM-Lab file applied, or "embedded"
    values: dict[str, str] = field(default_factory=dict)  # the -e KEY=VALUE pairs
    overrides: list[str] = field(default_factory=list)

    def summary(self, cell: str) -> str:
        """One line for the plan: which task, which hardware, which overrides."""
        changed = f"; overrides: {'; '.join(self.overrides)}" if self.overrides else ""
        price = self.config.get("max_price")
        cap = f", at most ${price:.2f}/h" if price is not None else ""
        return f"{cell}: dstack task {self.source} ({self.hardware}: {self.why}{cap}){changed}"

    def text(self, cell: str) -> str:
        header = (
            f"# dstack task of cell {cell}, written by slm-bench from {self.source}.\n"
            f"# Submitted as: dstack apply -f {TASK_FILE} -y -d -n NAME"
            + "".join(f" -e {key}=..." for key in self.values)
            + "\n"
        )
        if self.overrides:
            header += "".join(f"# override: {line}\n" for line in self.overrides)
        return header + yaml.safe_dump(self.config, sort_keys=False, width=1000, allow_unicode=True)


def slm_lab_task_path(checkout: Path, hardware: str, mode: str) -> Path:
    return Path(checkout) / ".dstack" / f"run-{hardware}-{task_mode(mode)}.yml"


def load_slm_lab_task(checkout: Path, hardware: str, mode: str) -> dict:
    path = slm_lab_task_path(checkout, hardware, mode)
    try:
        task = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(
            f"{path}: not found (the checkout's dstack task, as `slm-lab run-remote` applies it;"
            " expected in an SLM-Lab 5 checkout, or set dstack.inner_runner: embedded)"
        ) from None
    except (OSError, yaml.YAMLError) as error:
        raise BenchError(f"{path}: unreadable dstack task ({error})") from None
    if not isinstance(task, dict) or task.get("type") != "task" or not task.get("commands"):
        raise BenchError(f"{path}: not a dstack task (expected type: task and commands)")
    return task


def source_tree() -> Path | None:
    """This slm-bench's source tree (pyproject.toml beside the package), if it runs from one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "slm_bench").is_dir() else None


def embedded_task(
    hardware: str,
    mode: str,
    opts: dict,
    spec_local: Path,
    spec_remote: str,
    seed: int | None = None,
    source: ConfigSource = DEFAULT_SOURCE,
) -> dict:
    """The embedded runner's task: SLM-Lab's resources for the hardware, slm-bench installed on
    the box (this source tree uploaded, or ``dstack.install``), the spec file uploaded; ``seed``
    fixes the sessions' seeds (``slm-bench run --seed``); ``source`` names the config."""
    files = [f"{spec_local}:{REPO_MOUNT}/{spec_remote}"]
    if opts["install"]:
        requirement = opts["install"]
    else:
        tree = source_tree()
        if tree is None:
            raise BenchError(
                f"{source.where('dstack', 'install')}: this slm-bench was installed without its"
                " source tree, so the embedded task cannot upload it; set dstack.install to a pip"
                " requirement the remote box can install, e.g."
                " 'slm-bench @ git+https://github.com/OWNER/slm-bench@COMMIT'"
            )
        files.insert(0, f"{tree}:{SOURCE_MOUNT}")
        requirement = SOURCE_MOUNT
    index = f" --extra-index-url {CPU_TORCH_INDEX}" if hardware == "cpu" else ""
    seed_option = f" --seed {int(seed)}" if seed is not None else ""
    task: dict = {"type": "task", "name": "slm-bench", "python": "3.12", "files": files}
    task["env"] = ["HF_TOKEN", "HF_REPO", "SPEC_FILE", "SPEC_NAME", "LAB_MODE", "SPEC_VARS"]
    task["commands"] = [
        f"pip install{index} '{requirement}'",
        f"cd {REPO_MOUNT} && slm-bench run{seed_option} {SPEC_ARGS}",
        f"cd {REPO_MOUNT} && {EMBEDDED_UPLOAD}",
    ]
    task.update(copy.deepcopy(SLM_LAB_TASKS[(hardware, task_mode(mode))]))
    return task


def _duration(value: object, source: str) -> int:
    return int(parse_duration(value, source))


def apply_overrides(
    task: dict, opts: dict, time_limit_s: float, source: ConfigSource = DEFAULT_SOURCE
) -> list[str]:
    """Put the options' overrides on ``task`` (in place); one line per change."""
    changes: list[str] = []
    for key in ("resources", "spot_policy", "max_price"):
        if opts[key] is not None:
            _put(task, changes, key, copy.deepcopy(opts[key]))
    if opts["max_duration"] is not None:
        seconds = _duration(opts["max_duration"], source.where("dstack", "max_duration"))
        _put(task, changes, "max_duration", format_duration(seconds))
    if opts["retry_events"] is not None or opts["retry_duration"] is not None:
        _override_retry(task, changes, opts, source)
    if time_limit_s and time_limit_s > 0:
        _cap_at_time_limit(task, changes, time_limit_s)
    return changes


def _put(task: dict, changes: list[str], key: str, value: object) -> None:
    """Set ``task[key]``, recording the change when it is one."""
    old = task.get(key)
    if value != old:
        task[key] = value
        changes.append(f"{key}: {_flow(old)} -> {_flow(value)}")


def _override_retry(task: dict, changes: list[str], opts: dict, source: ConfigSource) -> None:
    """The options' retry events and duration over the task's; no events: no retry at all."""
    retry = dict(task.get("retry") or {})
    if opts["retry_events"] is not None:
        retry["on_events"] = list(opts["retry_events"])
    if opts["retry_duration"] is not None:
        seconds = _duration(opts["retry_duration"], source.where("dstack", "retry_duration"))
        retry["duration"] = format_duration(seconds)
    if not retry.get("on_events"):
        if "retry" in task:
            changes.append(f"retry: {_flow(task.pop('retry'))} -> none")
    else:
        retry.setdefault("duration", "1h")
        _put(task, changes, "retry", retry)


def _cap_at_time_limit(task: dict, changes: list[str], time_limit_s: float) -> None:
    """A task may run no longer than the pipeline's time_limit (at least a minute)."""
    own = task.get("max_duration")
    own_s = _duration(own, "the task's max_duration") if own not in (None, "off") else None
    if own_s is None or own_s > time_limit_s:
        limit = format_duration(max(60, int(time_limit_s)))
        changes.append(f"max_duration: {_flow(own)} -> {limit} (the pipeline's time_limit)")
        task["max_duration"] = limit


def _flow(value: object) -> str:
    if value is None:
        return "unset"
    text = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return " ".join(line for line in text.splitlines() if line.strip() != "...").strip()


def cell_spec(request: RunRequest, spec_root: Path) -> tuple[str, dict | None]:
    """The cell's env id and resolved spec (for the hardware choice); the env id falls back to
    ``-s env=`` or the cell's key when the spec cannot be read here."""
    from slm_bench.formats.spec import locate_spec_file, resolve_spec

    body = None
    try:
        path = locate_spec_file(request.spec_file, spec_root)
        body = resolve_spec(path, request.spec_name, request.sets)
    except (BenchError, OSError):
        pass
    env = (body or {}).get("env")
    env = env[0] if isinstance(env, list) and env else env
    env_id = env.get("name") if isinstance(env, dict) else None
    if not isinstance(env_id, str):
        env_id = request.sets.get("env") or request.cell.split("/", 1)[0]
    return env_id, body


def plan_task(
    opts: dict,
    request: RunRequest,
    store: StoreTarget | None,
    sources: Sources,
    env_id: str,
    spec_body: dict | None,
) -> TaskPlan:
    """The task for ``request``: SLM-Lab's own (with a checkout) or the embedded one, the
    hardware chosen per cell, the overrides on top, the -e values run-remote would set."""
    hardware, why = choose_hardware(env_id, spec_body, opts)
    inner = sources.inner_runner(opts)
    spec_file = request.spec_file
    if inner == "slm-lab":
        assert sources.checkout is not None  # inner_runner refuses slm-lab without a checkout
        config = load_slm_lab_task(sources.checkout, hardware, request.mode)
        source = str(slm_lab_task_path(sources.checkout, hardware, request.mode))
        # The task file is written in the cell's folder: the checkout is mounted by its path.
        config["repos"] = [f"{sources.checkout}:{REPO_MOUNT}"]
    else:
        from slm_bench.formats.spec import locate_spec_file

        local = locate_spec_file(spec_file, sources.spec_root)
        if not local.is_file():
            raise BenchError(
                f"{local}: spec file not found (the embedded task uploads it from"
                f" {sources.spec_root}); check spec_file, or the checkout the runner was given"
            )
        if Path(spec_file).is_absolute() or ".." in Path(spec_file).parts:
            spec_file = f"specs/{Path(spec_file).name}"
        seed = request.seed if request.mode == "train" else None
        config = embedded_task(
            hardware, request.mode, opts, local.resolve(), spec_file, seed, sources.config
        )
        source = f"the embedded runner's {hardware} task"
    config["name"] = base_run_name(request.spec_name, request.sets)
    overrides = apply_overrides(config, opts, request.time_limit_s, sources.config)
    if opts["setup_commands"] is not None:
        main = config["commands"][-MAIN_COMMANDS[inner] :]
        config["commands"] = [*opts["setup_commands"], *main]
        overrides.append("commands: setup from dstack.setup_commands")
    values = submit_values(request, spec_file)
    env = [str(entry) for entry in config.get("env") or []]
    names = {entry.partition("=")[0] for entry in env}
    for name, value in _store_values(opts, store).items():
        values[name] = value
        if name not in names:
            env.append(name)
            names.add(name)
    for name in opts["env"]:
        if name not in names:
            env.append(name)
            names.add(name)
    for name, value in RUN_REMOTE_VALUES.items():
        if name in names and not (name in _RUN_REMOTE_DEFAULTED and os.environ.get(name)):
            values[name] = value
    config["env"] = env
    return TaskPlan(config, hardware, why, inner, source, values, overrides)


def _store_values(opts: dict, store: StoreTarget | None) -> dict[str, str]:
    """HF_REPO / HF_ENDPOINT from the store settings, unless the env list passes them."""
    if store is None:
        return {}
    values = {"HF_REPO": store.dev_repo, "HF_ENDPOINT": store.endpoint}
    return {k: v for k, v in values.items() if v and k not in opts["env"]}


def bare_env_names(config: dict) -> list[str]:
    """The task's env entries without a value: dstack reads them from the submitter's env."""
    return [str(e) for e in config.get("env") or [] if "=" not in str(e)]


def submit_values(request: RunRequest, spec_file: str | None = None) -> dict[str, str]:
    """The ``-e KEY=VALUE`` pairs of the cell's spec, mode and sets (never a secret)."""
    for key, value in request.sets.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:/@+,=-]+", f"{key}={value}"):
            raise BenchError(  # the cell's sets: its envs entry or its checkout row
                f"{request.cell or request.spec_name}: -s {key}={value!r}: dstack passes sets"
                " through a shell variable; expected no spaces or quotes"
            )
    return {
        "SPEC_FILE": spec_file or request.spec_file,
        "SPEC_NAME": request.spec_name,
        "LAB_MODE": request.mode,
        "SPEC_VARS": " ".join(f"-s {k}={v}" for k, v in request.sets.items()),
    }
