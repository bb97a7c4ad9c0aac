"""The validated configuration and the benchmark matrix it declares.

The matrix comes from the config's ``envs`` or, without them, from a checkout's BENCHMARKS.md;
both routes go through ``build_matrix``, which checks every env id, algorithm key, label, spec
name and ``-s`` value (slm_bench/matrix/identifiers.py) before any job is planned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from slm_bench.config_model import BenchConfig
from slm_bench.config_source import DEFAULT_CONFIG, as_source
from slm_bench.durations import parse_duration
from slm_bench.errors import BenchError
from slm_bench.formats.naming import env_base
from slm_bench.formats.settings import Frames, Settings, parse_target
from slm_bench.matrix.identifiers import (
    check_algo_key,
    check_env_id,
    check_label,
    check_set,
    check_spec_file,
    check_spec_name,
    check_table_text,
    check_wildcard,
)
from slm_bench.matrix.seeds import cell_seed
from slm_bench.slurm.resources import check_extra
from slm_bench.validation import validate_against

if TYPE_CHECKING:
    from slm_bench.matrix.checkout import SkippedRow

DEFAULT_PHASE = "Phase 1: Classic Control"
# dstack options that are durations: a bare number is seconds, as in dstack's task files.
DSTACK_DURATIONS = (
    "max_duration",
    "retry_duration",
    "poll_interval_s",
    "poll_backoff_max_s",
    "unreachable_timeout_s",
    "heartbeat_s",
)


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
    sets: dict[str, str] = field(hash=False)  # -s KEY=VALUE, max_frame included
    settings: Settings = field(hash=False)  # the Settings line, at the row's frame budget
    target: str | None = None
    seed: int | None = None  # the cell's fixed seed (config seed), None: fresh seeds per run

    @property
    def key(self) -> str:
        return f"{self.env}/{self.algo}"

    @property
    def max_frame(self) -> Frames:
        """The cell's frame budget (its Settings line's, or its row's own); ``sets`` carries
        it as the ``-s max_frame=`` text."""
        assert isinstance(self.settings.max_frame, Frames)  # _MatrixBuilder._cell checks it
        return self.settings.max_frame

    def as_params(self, run_only: bool = False) -> dict:
        """The cell as plain data, for Snakemake params (deterministic: no paths that vary).

        ``run_only`` leaves out what only the table shows (label, target), so renaming a row
        never re-plans its training run.
        """
        params: dict[str, object] = {
            "env_id": self.env_id,
            "algo": self.algo,
            "spec_file": self.spec_file,
            "spec_name": self.spec_name,
            "sets": dict(self.sets),
            "settings": self.settings.line(),
        }
        if self.seed is not None:  # only when set: configs without a seed keep their params
            params["seed"] = self.seed
        if not run_only:
            params.update(label=self.label, target=self.target)
        return params

    @classmethod
    def from_params(cls, params: dict, config: BenchConfig) -> Cell:
        """The cell back from ``as_params``: jobs need not re-derive the whole matrix."""
        from slm_bench.formats.settings import parse_settings_line
        from slm_bench.formats.spec import locate_spec_file

        return cls(
            env_id=params["env_id"],
            env=env_base(params["env_id"]),
            algo=params["algo"],
            label=params.get("label", ""),
            spec_file=params["spec_file"],
            spec_path=locate_spec_file(params["spec_file"], config.spec_dir),
            spec_name=params["spec_name"],
            sets=dict(params["sets"]),
            settings=parse_settings_line(params["settings"]),
            target=params.get("target"),
            seed=params.get("seed"),
        )


@dataclass(frozen=True)
class EnvEntry:
    """One env section of BENCHMARKS.md: its Settings line, target, Docs line and rows."""

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
    skipped: list[SkippedRow] = field(default_factory=list)  # checkout rows left out, and why
    _phases: dict[str, list[str]] | None = field(default=None, init=False, repr=False)

    def cell(self, env: str, algo: str) -> Cell:
        return self.cells[(env, algo)]

    def phases(self) -> dict[str, list[str]]:
        """Phase slug (``phase-1-classic-control``) -> its envs, for per-phase targets."""
        if self._phases is None:
            self._phases = {}
            for entry in self.envs.values():
                self._phases.setdefault(phase_slug(entry.phase), []).append(entry.env)
        return self._phases


def phase_slug(phase: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (phase or "no phase").lower()).strip("-")


def check_unique_keys(path: str | os.PathLike, shown: str) -> None:
    """Refuse a key written twice in one mapping of a config file: Snakemake's loaders keep the
    last, so a second ``ppo:`` under one env would drop the first cell from the plan unsaid."""
    text = Path(path).read_text(encoding="utf-8")
    try:  # JSON first, as Snakemake reads it; a BenchError from the hook passes through
        json.loads(text, object_pairs_hook=lambda pairs: _unique_pairs(pairs, shown))
        return
    except ValueError:
        pass
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return  # not YAML either: Snakemake's own loader has said so
    _unique_nodes(root, "", shown)


def _unique_pairs(pairs: list, shown: str) -> dict:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise BenchError(
                f"{shown}: key {key!r} appears twice in one object; JSON keeps only the last,"
                " so keep one"
            )
    return dict(pairs)


def _unique_nodes(node: yaml.Node | None, path: str, shown: str) -> None:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _unique_nodes(item, path, shown)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name is not None and name != "<<":
            line = key.start_mark.line + 1
            if name in seen:
                raise BenchError(
                    f"{shown} line {line}: {path}{name}: written twice in one mapping (also on"
                    f" line {seen[name]}); YAML keeps only the last, so keep one"
                )
            seen[name] = line
        _unique_nodes(value, f"{path}{name}." if name is not None else path, shown)


def load_config(config: dict, source: str = DEFAULT_CONFIG) -> dict:
    """Validate a config in place (defaults filled in); the dstack section against its schema.
    Error lines name the file that set the bad value (``source``: a ConfigSource)."""
    source = as_source(source)
    validate_against(config, "config.schema.yaml", source, source.of)
    validate_against(
        config["dstack"],
        "dstack.schema.yaml",
        f"{source}: dstack",
        lambda path: f"{source.of(['dstack', *path])}: dstack",
    )
    for key in DSTACK_DURATIONS:
        if config["dstack"].get(key) is not None:
            parse_duration(config["dstack"][key], source.where("dstack", key))
    if config["max_frame_policy"] is None:
        config["max_frame_policy"] = "warn" if config.get("checkout") else "error"
    parse_duration(config["time_limit"], source.where("time_limit"))
    check_extra(config["slurm"]["extra"], source.of(["slurm", "extra"]))
    if config["runner"] == "dstack" and config["store"] != "hf":
        raise BenchError(
            f"{source.where('store')}: runner dstack uploads from remote machines, so it needs"
            " store: hf"
        )
    return config


def read_config(config: dict, source: str = DEFAULT_CONFIG) -> BenchConfig:
    """``config`` validated in place (``load_config``), as the typed, frozen ``BenchConfig``
    that names ``source`` in its error lines."""
    return BenchConfig.from_validated(load_config(config, source), as_source(source))


def build_matrix(config: BenchConfig | Mapping, source: str | None = None) -> Matrix:
    """Cells and envs from a validated config, or from its checkout's BENCHMARKS.md.

    Every value that becomes a path, a table cell or a command-line argument is checked here,
    whichever route it came from: one BenchError line naming the file and the field (the
    config's own ``source``, unless ``source`` names it). A job's script may pass the validated
    mapping Snakemake gives it.
    """
    config = BenchConfig.of(config)
    named = config.source if source is None else as_source(source)
    env_config: Mapping
    skipped: list[SkippedRow] = []
    if config.envs:
        env_config = config.envs

        def origin(env_id: object) -> str:
            return f"{named.of(['envs', env_id])}: envs"

    elif config.checkout is not None:
        from slm_bench.matrix.checkout import derive_envs

        checkout = config.checkout
        env_config, skipped = derive_envs(checkout, named)
        path = str(checkout.benchmarks_path)

        def origin(env_id: object) -> str:
            return path

    else:
        raise BenchError(f"{named}: envs: expected envs, or a checkout to read them from")
    builder = _MatrixBuilder(config.spec_dir, "", config.seed)
    for env_id, entry in env_config.items():
        builder.origin = origin(env_id)
        builder.add_env(env_id, entry)
    return Matrix(envs=builder.envs, cells=builder.cells, skipped=skipped)


class _MatrixBuilder:
    """Checks and collects one env entry at a time; ``origin`` names the file in errors."""

    def __init__(self, root: Path, origin: str, seed: int | None = None) -> None:
        self.root = root
        self.origin = origin
        self.seed = seed
        self.envs: dict[str, EnvEntry] = {}
        self.cells: dict[tuple[str, str], Cell] = {}

    def add_env(self, env_id: object, entry: Mapping) -> None:
        env_id = check_env_id(env_id, f"{self.origin}: env id")
        where = f"{self.origin}.{env_id}"
        env = env_base(env_id)
        if env in self.envs:
            raise BenchError(
                f"{where}: shares the results folder {env} with {self.envs[env].env_id} "
                "(expected env ids that differ without their ALE/ or playground/ prefix)"
            )
        settings = entry["settings"]
        if not isinstance(settings, Settings):
            settings = Settings.from_mapping(settings, source=f"{where}.settings")
        target = entry.get("target")
        if target is not None and parse_target(str(target)) is None:
            raise BenchError(f"{where}.target: got {target!r} (expected a target such as '> 400')")
        docs = dict(entry.get("docs") or {})  # a plain dict: Snakemake params show its repr
        for key, value in docs.items():
            check_table_text(value, f"{where}.docs.{key}", "one line of text")
        phase = entry.get("phase", DEFAULT_PHASE)
        if phase is not None:
            check_table_text(phase, f"{where}.phase", "a phase heading on one line")
            if not phase_slug(phase):  # the {phase} wildcard: letters and digits of the heading
                raise BenchError(f"{where}.phase: got {phase!r} (expected a letter or digit in it)")
            check_wildcard(phase_slug(phase), f"{where}.phase", phase)
        labels: dict[str, str] = {}
        for algo, row in entry["algorithms"].items():
            cell = self._cell(env_id, env, algo, row, settings, target, where)
            if cell.label in labels:
                raise BenchError(
                    f"{where}.algorithms.{algo}.label: {cell.label!r} is also the label of "
                    f"{labels[cell.label]} (expected one row per label in an env)"
                )
            labels[cell.label] = algo
            self.cells[(env, algo)] = cell
        self.envs[env] = EnvEntry(
            env_id=env_id,
            env=env,
            settings=settings,
            target=target,
            docs=docs,
            phase=phase,
            algos=tuple(entry["algorithms"]),
            docs_line=entry.get("docs_line"),
        )

    def _cell(
        self,
        env_id: str,
        env: str,
        algo: object,
        row: Mapping,
        settings: Settings,
        target: str | None,
        where: str,
    ) -> Cell:
        from slm_bench.formats.spec import locate_spec_file

        algo = check_algo_key(algo, f"{where}.algorithms: algorithm key")
        where = f"{where}.algorithms.{algo}"
        label = check_label(row.get("label"), f"{where}.label")
        spec_file = check_spec_file(row.get("spec_file"), f"{where}.spec_file")
        _check_linkable(spec_file, f"{where}.spec_file")
        spec_name = check_spec_name(row.get("spec_name"), f"{where}.spec_name")
        sets = {
            key: check_set(key, value, f"{where}.sets")
            for key, value in (row.get("sets") or {}).items()
        }
        if row.get("max_frame") is not None:  # the row's documented frame budget
            settings = settings.with_budget(row["max_frame"], f"{where}.max_frame")
        if not isinstance(settings.max_frame, Frames):
            raise BenchError(
                f"{where}: Settings max_frame is {settings.line()!r} (expected one number, or "
                "a max_frame for this algorithm within it)"
            )
        sets["max_frame"] = str(settings.max_frame)
        return Cell(
            env_id=env_id,
            env=env,
            algo=algo,
            label=label,
            spec_file=spec_file,
            spec_path=locate_spec_file(spec_file, self.root),
            spec_name=spec_name,
            sets=sets,
            settings=settings,
            target=target,
            seed=cell_seed(self.seed, f"{env}/{algo}"),
        )


def _check_linkable(spec_file: str, where: str) -> None:
    """An absolute spec_file must lie inside the project: the table links every spec file,
    and a link to a path of this machine resolves nowhere else (nor in the published docs)."""
    path = Path(spec_file)
    if path.is_absolute() and not path.resolve().is_relative_to(Path.cwd().resolve()):
        raise BenchError(
            f"{where}: {spec_file!r} is outside the project (expected a path relative to "
            "spec_root, or one inside the working directory: the table links it, and a link "
            "to this machine's path resolves nowhere else)"
        )


def cell_fingerprint(cell: Cell, policy: str) -> str:
    """What a cell's result depends on: its spec, the sets, the Settings and the audit policy.

    Used as a Snakemake param so that editing one spec in a shared file re-plans only the cells
    whose spec changed. The spec as written (parsed once per file, anchors merged) plus the sets
    determine the resolved spec, and are much cheaper to get for 300 cells. A file that only
    parses after substitution is resolved; a spec that cannot be read fingerprints its error,
    so the plan stays buildable and the failing cell reports the error when it runs.
    """
    from slm_bench.formats.spec import raw_spec, resolve_spec

    payload: dict[str, object]
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
