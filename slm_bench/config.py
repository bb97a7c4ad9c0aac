"""The validated configuration and the benchmark matrix it declares.

Snakemake's own ``validate`` prints a multi-line report; a newcomer with a typo deserves one line
naming the key, so validation (with defaults filled in, as Snakemake does) lives here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from slm_bench.durations import parse_duration
from slm_bench.errors import BenchError
from slm_bench.naming import env_base
from slm_bench.settings import Settings, parse_target
from slm_bench.validation import validate_against

TIME_LIMIT_SOURCE = "config.yaml: time_limit"


@dataclass(frozen=True)
class Cell:
    """One (env, algorithm) result: a row of BENCHMARKS.md."""

    env_id: str
    env: str  # env_base(env_id): the {env} wildcard
    algo: str  # the {algo} wildcard
    label: str
    spec_file: str
    spec_path: Path
    spec_name: str
    sets: dict = field(hash=False)
    settings: Settings = field(hash=False)
    target: str | None = None

    @property
    def key(self) -> str:
        return f"{self.env}/{self.algo}"

    def as_params(self, run_only: bool = False) -> dict:
        """The cell as plain data, for Snakemake params (deterministic: no paths that vary).

        ``run_only`` leaves out what only the table shows (label, target), so renaming a row
        never re-plans its training run.
        """
        params = {
            "env_id": self.env_id,
            "algo": self.algo,
            "spec_file": self.spec_file,
            "spec_name": self.spec_name,
            "sets": dict(self.sets),
            "settings": self.settings.line(),
        }
        if not run_only:
            params.update(label=self.label, target=self.target)
        return params

    @classmethod
    def from_params(cls, params: dict, config: dict) -> Cell:
        """The cell back from ``as_params``: jobs need not re-derive the whole matrix."""
        from slm_bench.settings import parse_settings_line
        from slm_bench.spec import locate_spec_file

        return cls(
            env_id=params["env_id"],
            env=env_base(params["env_id"]),
            algo=params["algo"],
            label=params.get("label", ""),
            spec_file=params["spec_file"],
            spec_path=locate_spec_file(params["spec_file"], spec_root(config)),
            spec_name=params["spec_name"],
            sets=dict(params["sets"]),
            settings=parse_settings_line(params["settings"]),
            target=params.get("target"),
        )


@dataclass(frozen=True)
class EnvEntry:
    env_id: str
    env: str
    settings: Settings
    target: str | None
    docs: dict
    phase: str | None
    algos: tuple[str, ...]
    docs_line: str | None = None  # an existing Docs line (from a checkout's BENCHMARKS.md)


@dataclass
class Matrix:
    envs: dict[str, EnvEntry]
    cells: dict[tuple[str, str], Cell]
    skipped: list = field(default_factory=list)  # checkout rows left out, with the reason

    def cell(self, env: str, algo: str) -> Cell:
        return self.cells[(env, algo)]

    def phases(self) -> dict[str, list[str]]:
        """Phase slug (``phase-1-classic-control``) -> its envs, for per-phase targets."""
        phases: dict[str, list[str]] = {}
        for env in self.envs.values():
            phases.setdefault(phase_slug(env.phase), []).append(env.env)
        return phases


def phase_slug(phase: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (phase or "no phase").lower()).strip("-")


def spec_root(config: dict) -> Path:
    """Where spec_file paths resolve: spec_root, else the checkout's root, else the workdir."""
    if config.get("spec_root"):
        return Path(config["spec_root"])
    if config.get("checkout"):
        return Path(config["checkout"]["root"])
    return Path(".")

    def cell(self, env: str, algo: str) -> Cell:
        return self.cells[(env, algo)]

    def env_cells(self, env: str) -> list[Cell]:
        return [self.cells[(env, algo)] for algo in self.envs[env].algos]


def _number_text(value) -> str:
    """A Settings value as ``-s`` text (substitution normalises numbers like ``2e5``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_matrix(config: dict) -> Matrix:
    """Cells and envs from a validated config (or its checkout's BENCHMARKS.md)."""
    from slm_bench.spec import locate_spec_file

    root = spec_root(config)
    skipped = []
    env_config = config.get("envs")
    if not env_config and config.get("checkout"):
        from slm_bench.checkout import derive_envs

        env_config, skipped = derive_envs(config["checkout"])
    envs: dict[str, EnvEntry] = {}
    cells: dict[tuple[str, str], Cell] = {}
    for env_id, entry in env_config.items():
        key = env_base(env_id)
        if key in envs:
            raise BenchError(
                f"config.yaml: envs: {env_id} and {envs[key].env_id} share the name {key}"
            )
        where = f"config.yaml: envs.{env_id}"
        settings = entry["settings"]
        if not isinstance(settings, Settings):
            settings = Settings.from_mapping(settings, source=f"{where}.settings")
        target = entry.get("target")
        if target is not None and parse_target(str(target)) is None:
            raise BenchError(f"{where}.target: {target!r} is not a target (expected e.g. '> 400')")
        envs[key] = EnvEntry(
            env_id=env_id,
            env=key,
            settings=settings,
            target=target,
            docs=entry.get("docs", {}),
            phase=entry.get("phase", "Phase 1: Classic Control"),
            algos=tuple(entry["algorithms"]),
            docs_line=entry.get("docs_line"),
        )
        for algo, row in entry["algorithms"].items():
            sets = {k: _number_text(v) for k, v in row.get("sets", {}).items()}
            sets["max_frame"] = _number_text(settings.max_frame)
            cells[(key, algo)] = Cell(
                env_id=env_id,
                env=key,
                algo=algo,
                label=row["label"],
                spec_file=row["spec_file"],
                spec_path=locate_spec_file(row["spec_file"], root),
                spec_name=row["spec_name"],
                sets=sets,
                settings=settings,
                target=target,
            )
    return Matrix(envs=envs, cells=cells, skipped=skipped)


def load_config(config: dict, source: str = "config.yaml") -> dict:
    """Validate a config (defaults filled in); the dstack section against its own schema."""
    validate_against(config, "config.schema.yaml", source)
    validate_against(config["dstack"], "dstack.schema.yaml", f"{source}: dstack")
    if config["max_frame_policy"] is None:
        config["max_frame_policy"] = "warn" if config.get("checkout") else "error"
    parse_duration(config["time_limit"], f"{source}: time_limit")
    if config["runner"] == "dstack" and config["store"] != "hf":
        raise BenchError(
            f"{source}: store: runner dstack uploads from remote machines, so it needs store: hf"
        )
    return config


def cell_fingerprint(cell: Cell, policy: str) -> str:
    """What a cell's result depends on: its spec, the sets, the Settings and the audit policy.

    Used as a Snakemake param so that editing one spec in a shared file re-plans only the cells
    whose spec changed. The spec as written (parsed once per file, anchors merged) plus the sets
    determine the resolved spec, and are much cheaper to get for 300 cells. A file that only
    parses after substitution is resolved; a spec that cannot be read fingerprints its error,
    so the plan stays buildable and the failing cell reports the error when it runs.
    """
    from slm_bench.spec import raw_spec, resolve_spec

    try:
        payload = {"spec": raw_spec(cell.spec_path, cell.spec_name)}
    except BenchError:
        try:
            payload = {"resolved": resolve_spec(cell.spec_path, cell.spec_name, cell.sets)}
        except BenchError as error:
            payload = {"error": str(error)}
    payload.update(settings=cell.settings.line(), policy=policy, sets=cell.sets)
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
