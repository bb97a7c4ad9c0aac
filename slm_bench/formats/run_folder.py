"""SLM-Lab run folders (``data/{name}_{YYYY_MM_DD_HHMMSS}``): their layout, and reading one."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from slm_bench.errors import BenchError
from slm_bench.formats.spec import spec_settings

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


def load_json(path: str | os.PathLike, shown_as: str | None = None) -> Any:
    """Read SLM-Lab JSON, which may hold bare ``NaN``, ``Infinity`` and ``-Infinity``.

    Errors name the file as ``shown_as`` when given (where the file really lives, e.g. in the
    store, when ``path`` is a temporary copy).
    """
    path = Path(path)
    shown = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise BenchError(f"{shown}: cannot read: {reason}") from None
    try:
        # json.loads maps NaN/Infinity/-Infinity to floats by default; said here on purpose.
        return json.loads(text, parse_constant=_JSON_CONSTANTS.__getitem__)
    except json.JSONDecodeError as error:
        raise BenchError(
            f"{shown}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
            " (truncated or corrupt)"
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
    trial_metrics_path: Path | None = None  # the file trial_metrics was read from
    shown_as: str | None = None  # how messages name the folder (its real place, e.g. the store)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.path, self.prefix)

    @property
    def metrics_file(self) -> Path:
        """The trial metrics file: the one read, else where SLM-Lab writes it."""
        return self.trial_metrics_path or self.layout.trial_metrics_json

    @property
    def data_name(self) -> str:
        return f"data/{self.path.name}"

    def shown(self, path: Path) -> str:
        """``path`` (inside the folder) as messages name it."""
        if self.shown_as is None:
            return str(path)
        return f"{self.shown_as.rstrip('/')}/{Path(path).relative_to(self.path).as_posix()}"


def _find_prefix(root: Path, shown: str) -> str:
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
    raise BenchError(f"{shown}: not an SLM-Lab run folder (no single {expected} in it)")


def _search_evidence(root: Path, prefix: str, spec: dict) -> tuple[str, ...]:
    evidence = []
    meta = value if isinstance(value := spec.get("meta"), dict) else {}
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


def read_run_folder(path: str | os.PathLike, shown_as: str | None = None) -> RunFolder:
    """Read a run folder: find ``{prefix}_spec.json``, tell train from search, load t0 metrics.

    ``shown_as`` names the folder in every error (its real place when ``path`` is a temporary
    copy, e.g. the store's ``.../data/FOLDER``).
    """
    root = Path(path)
    folder = RunFolder(root, "", "train", {}, None, shown_as=shown_as)
    if not root.is_dir():
        raise BenchError(f"{shown_as or root}: not a run folder (no such directory)")
    folder.prefix = _find_prefix(root, shown_as or str(root))
    layout = folder.layout
    spec_path = layout.spec_json if layout.spec_json.is_file() else layout.trial_spec_json
    spec = load_json(spec_path, folder.shown(spec_path))
    if not isinstance(spec, dict):
        raise BenchError(f"{folder.shown(spec_path)}: expected a JSON object (a resolved spec)")
    folder.spec = spec
    folder.search_evidence = _search_evidence(root, folder.prefix, spec)
    folder.kind = "search" if folder.search_evidence else "train"
    if layout.trial_metrics_json.is_file():
        path = layout.trial_metrics_json
        trial_metrics = load_json(path, folder.shown(path))
        if not isinstance(trial_metrics, dict) or not isinstance(trial_metrics.get("scalar"), dict):
            raise BenchError(f"{folder.shown(path)}: expected an object with a 'scalar' object")
        folder.trial_metrics, folder.trial_metrics_path = trial_metrics, path
    else:
        for path in (layout.trial_metrics_scalar_json, layout.root_trial_metrics_scalar_json):
            if path.is_file():
                scalar = load_json(path, folder.shown(path))
                if not isinstance(scalar, dict):
                    raise BenchError(
                        f"{folder.shown(path)}: expected a JSON object of trial scalars"
                    )
                folder.trial_metrics, folder.trial_metrics_path = {"scalar": scalar}, path
                break
    return folder


def require_train(folder: RunFolder) -> None:
    """BenchError unless ``folder`` is a train run."""
    if folder.kind != "train":
        evidence = ", ".join(folder.search_evidence) or "kind search"
        raise BenchError(
            f"{folder.shown_as or folder.data_name} is a search run ({evidence}); "
            "only train runs enter the table"
        )


class _SettingsLike(Protocol):
    def mismatches(self, spec_values: Mapping[str, object]) -> list[str]: ...


def check_settings(folder: RunFolder, settings: _SettingsLike) -> None:
    """BenchError listing every Settings field the run's spec disagrees with."""
    problems = settings.mismatches(spec_settings(folder.spec))
    if problems:
        raise BenchError(
            f"{folder.shown_as or folder.data_name}/{folder.prefix}_spec.json does not match "
            "the Settings line: " + "; ".join(problems)
        )


def _metrics_source(folder: RunFolder) -> str:
    return folder.shown(folder.metrics_file)


def trial_score(folder: RunFolder) -> float:
    """The benchmark score of a complete run: the trial's ``total_reward_ma`` (mean over
    sessions). A run that stopped before ``max_frame`` or a non-finite score is refused."""
    require_complete(folder)
    source = _metrics_source(folder)
    assert folder.trial_metrics is not None  # require_complete refuses a run without them
    scalar = folder.trial_metrics.get("scalar") or {}
    if "total_reward_ma" not in scalar:
        raise BenchError(f"{source}: scalar.total_reward_ma missing")
    value = scalar["total_reward_ma"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchError(f"{source}: scalar.total_reward_ma: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise BenchError(f"{source}: scalar.total_reward_ma is {value}: expected a finite score")
    return float(value)


# -- completeness -------------------------------------------------------------------------------


def final_checkpoint_frame(max_frame: int, num_envs: int, log_frequency: int) -> int:
    """The frame of the last checkpoint a complete SLM-Lab session logs.

    A session steps ``num_envs`` frames at a time while ``frame < max_frame`` and checkpoints
    when ``frame % log_frequency < num_envs`` or ``frame == max_frame`` (SLM-Lab's
    ``Session.to_ckpt``), so when ``max_frame`` is not a multiple of ``num_envs`` the last
    checkpoint can fall below it.
    """
    end = -(-max_frame // num_envs) * num_envs  # the frame the loop stops at
    if end == max_frame:
        return max_frame
    # The one multiple of num_envs in [m * log_frequency, m * log_frequency + num_envs).
    m = end // log_frequency
    return -(-(m * log_frequency) // num_envs) * num_envs if m else end


@dataclass(frozen=True)
class RunBudget:
    """What a complete run of a spec reaches: every session's last checkpoint frame."""

    max_frame: int  # the spec's env.max_frame (the whole run's budget)
    last_frame: int  # each session's final checkpoint frame
    sessions: int


def run_budget(folder: RunFolder) -> RunBudget:
    """The budget in the folder's own resolved spec."""
    source = folder.shown(folder.layout.spec_json)
    values: dict[str, int] = {}
    for key, value in spec_settings(folder.spec).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BenchError(f"{source}: {key}: expected a positive whole number, got {value!r}")
        values[key] = value
    max_frame, num_envs = values["max_frame"], values["num_envs"]
    session_frames = max_frame
    meta = folder.spec.get("meta") or {}
    if meta.get("distributed") not in (False, None):  # SLM-Lab splits the budget over sessions
        session_frames = int(max_frame / values["max_session"])
    last = final_checkpoint_frame(session_frames, num_envs, values["log_frequency"])
    return RunBudget(max_frame=max_frame, last_frame=last, sessions=values["max_session"])


def _frame_text(frame: float) -> str:
    return str(int(frame)) if math.isfinite(frame) and frame.is_integer() else str(frame)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def require_complete(folder: RunFolder) -> RunBudget:
    """BenchError (the file, the frame it reached, the max_frame expected) unless every session
    of the run reached its last checkpoint, in the trial metrics and in the session CSVs.
    Returns the budget the run was checked against.

    SLM-Lab rewrites the trial metrics and each session's CSV at every checkpoint, so a killed
    run leaves a folder that reads like a finished one with fewer frames.
    """
    budget = run_budget(folder)
    source = _metrics_source(folder)
    if folder.trial_metrics is None:
        raise BenchError(f"{source}: missing; the run has no trial metrics (did it finish?)")

    frame = _number(folder.trial_metrics["scalar"].get("frame"))
    if frame is None or not math.isfinite(frame):
        raise BenchError(f"{source}: scalar.frame: expected a number (the frame reached)")
    if frame < budget.last_frame:
        raise _unfinished(source, frame, budget)
    local = folder.trial_metrics.get("local")
    returns: Sequence[list[float] | None]
    if local is not None:
        returns = _session_returns(local, budget, source)
        frames = local["frames"]
        for s, session in enumerate(returns):
            reached = frames[len(session) - 1] if session else 0.0
            if reached < budget.last_frame:
                raise _unfinished(f"{source}: session {s}", reached, budget)
    else:
        returns = [None] * budget.sessions
    for s in range(budget.sessions):
        _check_session_csv(folder, s, budget, returns[s])
    return budget


def _unfinished(where: str, reached: float, budget: RunBudget) -> BenchError:
    return BenchError(
        f"{where}: frame reached {_frame_text(reached)} of max_frame {budget.max_frame} "
        f"(last checkpoint {budget.last_frame}): the run did not finish"
    )


def _session_returns(local: object, budget: RunBudget, source: str) -> list[list[float]]:
    """``local.mean_returns`` (one list per session, ``max_session`` of them), checked."""
    if not isinstance(local, dict):
        raise BenchError(f"{source}: local: expected an object")
    frames, returns = local.get("frames"), local.get("mean_returns")
    if not isinstance(frames, list) or not all(_number(f) is not None for f in frames):
        raise BenchError(f"{source}: local.frames: expected a list of frames")
    if not isinstance(returns, list) or not all(isinstance(r, list) for r in returns):
        raise BenchError(f"{source}: local.mean_returns: expected one list per session")
    if len(returns) != budget.sessions:
        raise BenchError(
            f"{source}: local.mean_returns holds {len(returns)} sessions, expected max_session "
            f"{budget.sessions} (a session that never reached frame {budget.last_frame})"
        )
    for s, session in enumerate(returns):
        if len(session) > len(frames) or not all(_number(v) is not None for v in session):
            raise BenchError(
                f"{source}: local.mean_returns[{s}]: expected at most {len(frames)} numbers"
            )
    return returns


def _check_session_csv(
    folder: RunFolder, s: int, budget: RunBudget, returns: list[float] | None
) -> None:
    """Session ``s``'s train CSV must be whole and reach the last checkpoint; when the trial
    metrics hold that session's returns, the CSV's ``total_reward`` must be the same series."""
    path = folder.layout.session_df_csv(s)
    shown = folder.shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchError(f"{shown}: missing; session {s} has no checkpoint data") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BenchError(f"{shown}: cannot read: {error}") from None
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0] if rows else []
    if "frame" not in header or "total_reward" not in header:
        raise BenchError(f"{shown}: expected a session_df CSV with frame and total_reward columns")
    if not text.endswith("\n") or any(len(row) != len(header) for row in rows[1:]):
        raise BenchError(f"{shown}: truncated (a row is cut short); the CSV is incomplete")
    frame_at, reward_at = header.index("frame"), header.index("total_reward")
    try:
        frames = [float(row[frame_at]) for row in rows[1:]]
        rewards = [float(row[reward_at]) if row[reward_at] else math.nan for row in rows[1:]]
    except ValueError as error:
        raise BenchError(f"{shown}: frame/total_reward: expected numbers ({error})") from None
    reached = frames[-1] if frames else 0.0
    if not reached >= budget.last_frame:
        raise _unfinished(shown, reached, budget)
    if returns is not None and not _same_series(rewards, returns):
        raise BenchError(
            f"{shown}: total_reward ({len(rewards)} checkpoints) differs from session {s}'s "
            f"mean_returns in {_metrics_source(folder)} ({len(returns)} checkpoints)"
        )


def _same_series(a: list[float], b: list[float]) -> bool:
    # The CSV holds float32 values as text; the JSON holds the same values as doubles.
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6)
        for x, y in zip(a, map(float, b), strict=True)
    )
