"""SLM-Lab run folders (``data/{name}_{YYYY_MM_DD_HHMMSS}``): their layout, and reading one."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from slm_bench.errors import BenchError

# The timestamp SLM-Lab appends to a run folder name (local time).
FOLDER_TS_RE = re.compile(r"(\d{4}_\d{2}_\d{2}_\d{6})$")
FOLDER_TS_FORMAT = "%Y_%m_%d_%H%M%S"


def folder_name(prefix: str, when: datetime) -> str:
    """``{prefix}_{YYYY_MM_DD_HHMMSS}``."""
    return f"{prefix}_{when.strftime(FOLDER_TS_FORMAT)}"


def folder_prefix(folder: str | os.PathLike) -> str:
    """The experiment prefix of a run folder name: ``ppo_cartpole_2025_01_02_030405`` ->
    ``ppo_cartpole``."""
    name = Path(folder).name
    match = FOLDER_TS_RE.search(name)
    if not match or match.start() < 2 or name[match.start() - 1] != "_":
        raise BenchError(f"{folder}: not a run folder name (expected {{name}}_YYYY_MM_DD_HHMMSS)")
    return name[: match.start() - 1]


@dataclass(frozen=True)
class RunLayout:
    """Every path of a train run folder ``root`` whose experiment prefix is ``prefix``.

    Trial ``t0`` is the only trial of a train run; ``s`` is a session index.
    """

    root: Path
    prefix: str

    @property
    def trial_prefix(self) -> str:
        return f"{self.prefix}_t0"

    def session_prefix(self, s: int) -> str:
        return f"{self.prefix}_t0_s{s}"

    @property
    def spec_json(self) -> Path:
        return self.root / f"{self.prefix}_spec.json"

    @property
    def trial_spec_json(self) -> Path:
        return self.root / f"{self.trial_prefix}_spec.json"

    @property
    def info_dir(self) -> Path:
        return self.root / "info"

    @property
    def trial_metrics_json(self) -> Path:
        return self.info_dir / f"{self.trial_prefix}_trial_metrics.json"

    @property
    def trial_metrics_scalar_json(self) -> Path:
        return self.info_dir / f"{self.trial_prefix}_trial_metrics_scalar.json"

    @property
    def root_trial_metrics_scalar_json(self) -> Path:
        return self.root / f"{self.trial_prefix}_trial_metrics_scalar.json"

    def session_df_csv(self, s: int, mode: str = "train") -> Path:
        return self.info_dir / f"{self.session_prefix(s)}_session_df_{mode}.csv"

    def session_metrics_json(self, s: int, mode: str = "train") -> Path:
        return self.info_dir / f"{self.session_prefix(s)}_session_metrics_{mode}.json"

    def session_metrics_scalar_json(self, s: int, mode: str = "train") -> Path:
        return self.info_dir / f"{self.session_prefix(s)}_session_metrics_scalar_{mode}.json"

    @property
    def graph_dir(self) -> Path:
        return self.root / "graph"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def trial_log(self) -> Path:
        return self.log_dir / f"{self.trial_prefix}.log"

    def session_log(self, s: int) -> Path:
        return self.log_dir / f"{self.session_prefix(s)}.log"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"


def load_json(path: str | os.PathLike) -> Any:
    """Read SLM-Lab JSON, which may hold bare ``NaN``, ``Infinity`` and ``-Infinity``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BenchError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        # json.loads maps NaN/Infinity/-Infinity to floats by default; said here on purpose.
        return json.loads(text, parse_constant=_JSON_CONSTANTS.__getitem__)
    except json.JSONDecodeError as error:
        raise BenchError(
            f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None


_JSON_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_TRIAL_FILE_RE = re.compile(r"_t(\d+)(?:_s\d+)?_")


@dataclass
class RunFolder:
    """A run folder on disk: its spec, whether it is a train or a search run, its t0 metrics."""

    path: Path
    prefix: str
    kind: str  # "train" or "search"
    spec: dict
    trial_metrics: dict | None  # info/{prefix}_t0_trial_metrics.json: {"scalar": ..., "local": ...}
    search_evidence: tuple[str, ...] = field(default=())

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.path, self.prefix)

    @property
    def data_name(self) -> str:
        return f"data/{self.path.name}"


def _find_prefix(root: Path) -> str:
    try:
        prefix = folder_prefix(root)
    except BenchError:
        prefix = None
    if prefix and (root / f"{prefix}_spec.json").is_file():
        return prefix
    # A renamed folder: the experiment spec is the one *_spec.json without a _tN part.
    names = sorted(p.name[: -len("_spec.json")] for p in root.glob("*_spec.json") if p.is_file())
    experiment = [n for n in names if not re.search(r"_t\d+(?:_s\d+)?$", n)]
    if len(experiment) == 1:
        return experiment[0]
    trials = {re.sub(r"_t\d+$", "", n) for n in names if re.search(r"_t\d+$", n)}
    if not experiment and len(trials) == 1:
        return trials.pop()
    expected = f"{prefix}_spec.json" if prefix else "{name}_spec.json"
    raise BenchError(f"{root}: not an SLM-Lab run folder (no single {expected} in it)")


def _search_evidence(root: Path, prefix: str, spec: dict) -> tuple[str, ...]:
    evidence = []
    meta = spec.get("meta") if isinstance(spec.get("meta"), dict) else {}
    trial = meta.get("trial")
    if trial == -1:
        evidence.append("meta.trial == -1")
    # A train run of a spec that has a search block keeps that block (meta.trial is then 0), so
    # the block only counts when meta.trial does not say which trial this is.
    if spec.get("search") and not (isinstance(trial, int) and trial >= 0):
        evidence.append("a search block in the spec")
    if (root / "ray_tune").is_dir():
        evidence.append("ray_tune/")
    experiment_df = f"{prefix}_experiment_df.csv"
    if (root / "info" / experiment_df).is_file() or (root / experiment_df).is_file():
        evidence.append(f"{experiment_df}")
    trials = set()
    for folder in (root, root / "info"):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith(f"{prefix}_t"):
                    match = _TRIAL_FILE_RE.match(p.name, len(prefix))
                    if match:
                        trials.add(int(match.group(1)))
    if len(trials) > 1:
        evidence.append(f"{len(trials)} trials t{min(trials)}..t{max(trials)}")
    return tuple(evidence)


def read_run_folder(path: str | os.PathLike) -> RunFolder:
    """Read a run folder: find ``{prefix}_spec.json``, tell train from search, load t0 metrics."""
    root = Path(path)
    if not root.is_dir():
        raise BenchError(f"{root}: not a run folder (no such directory)")
    prefix = _find_prefix(root)
    layout = RunLayout(root, prefix)
    spec = load_json(layout.spec_json if layout.spec_json.is_file() else layout.trial_spec_json)
    if not isinstance(spec, dict):
        raise BenchError(f"{layout.spec_json}: expected a JSON object (a resolved spec)")
    evidence = _search_evidence(root, prefix, spec)
    trial_metrics = None
    if layout.trial_metrics_json.is_file():
        trial_metrics = load_json(layout.trial_metrics_json)
        if not isinstance(trial_metrics, dict) or not isinstance(trial_metrics.get("scalar"), dict):
            raise BenchError(
                f"{layout.trial_metrics_json}: expected an object with a 'scalar' object"
            )
    else:
        for scalar_path in (
            layout.trial_metrics_scalar_json,
            layout.root_trial_metrics_scalar_json,
        ):
            if scalar_path.is_file():
                scalar = load_json(scalar_path)
                if not isinstance(scalar, dict):
                    raise BenchError(f"{scalar_path}: expected a JSON object of trial scalars")
                trial_metrics = {"scalar": scalar}
                break
    return RunFolder(
        path=root,
        prefix=prefix,
        kind="search" if evidence else "train",
        spec=spec,
        trial_metrics=trial_metrics,
        search_evidence=evidence,
    )


def require_train(folder: RunFolder) -> None:
    """BenchError unless ``folder`` is a train run."""
    if folder.kind != "train":
        evidence = ", ".join(folder.search_evidence) or "kind search"
        raise BenchError(
            f"{folder.data_name} is a search run ({evidence}); only train runs enter the table"
        )


class _SettingsLike(Protocol):
    def mismatches(self, spec_values: dict[str, object]) -> list[str]: ...


def _whole(value: object) -> object:
    # SLM-Lab turns a whole float max_frame (1e7) into an int; compare and show it that way.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def spec_settings(spec: dict) -> dict[str, object]:
    """The four benchmark Settings values of a resolved spec, keyed by Settings field name."""
    env = spec.get("env")
    env = env[0] if isinstance(env, list) and env else env  # older specs hold a list of envs
    env = env if isinstance(env, dict) else {}
    meta = spec.get("meta") if isinstance(spec.get("meta"), dict) else {}
    return {
        "max_frame": _whole(env.get("max_frame")),
        "num_envs": _whole(env.get("num_envs", 1)),  # SLM-Lab runs 1 env when num_envs is absent
        "max_session": _whole(meta.get("max_session")),
        "log_frequency": _whole(meta.get("log_frequency")),
    }


def check_settings(folder: RunFolder, settings: _SettingsLike) -> None:
    """BenchError listing every Settings field the run's spec disagrees with."""
    problems = settings.mismatches(spec_settings(folder.spec))
    if problems:
        raise BenchError(
            f"{folder.data_name}/{folder.prefix}_spec.json does not match the Settings line: "
            + "; ".join(problems)
        )


def trial_score(folder: RunFolder) -> float:
    """The benchmark score: the trial's ``total_reward_ma`` (mean over sessions)."""
    source = RunLayout(folder.path, folder.prefix).trial_metrics_json
    if folder.trial_metrics is None:
        raise BenchError(f"{source}: missing; the run has no trial metrics (did it finish?)")
    scalar = folder.trial_metrics.get("scalar") or {}
    if "total_reward_ma" not in scalar:
        raise BenchError(f"{source}: scalar.total_reward_ma missing")
    value = scalar["total_reward_ma"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchError(f"{source}: scalar.total_reward_ma: expected a number, got {value!r}")
    return float(value)
