"""The validated config as one frozen typed object (``BenchConfig``), made once per process.

``load_config`` (slm_bench/matrix/config.py) checks the mapping Snakemake reads against
schemas/config.schema.yaml and fills in its defaults; ``BenchConfig.from_validated`` turns that
mapping into frozen dataclasses whose fields are the schema's keys, one for one (and the
config's ``source``, so that a job's error line names the file the plan's would): a key the
schema gains but this model lacks (or the reverse) fails the plan, before any job, as does a
typo'd attribute under mypy. Which runner and store a config names are enums
(``RunnerKind``, ``StoreKind``); what differs between them is decided here or in the one
factory of each seam (``slm_bench.runners.configured_runner``, ``slm_bench.stores``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.durations import parse_duration


class RunnerKind(StrEnum):
    """Who trains (config ``runner``)."""

    EMBEDDED = "embedded"
    SLM_LAB = "slm-lab"
    DSTACK = "dstack"

    @property
    def is_remote(self) -> bool:
        """Whether runs happen elsewhere: their state is journalled, not in the cell's work/."""
        return self is RunnerKind.DSTACK

    @property
    def takes_absolute_spec(self) -> bool:
        """The embedded runner reads the spec file from here; SLM-Lab and dstack get the path
        as the row names it (relative to the checkout)."""
        return self is RunnerKind.EMBEDDED


class StoreKind(StrEnum):
    """Where run folders are kept (config ``store``)."""

    LOCAL = "local"
    HF = "hf"


class StatusRule(StrEnum):
    """How the Status column is computed (config ``status_rule``;
    slm_bench/formats/status_rule.py)."""

    LEGEND = "legend"
    BASELINE = "baseline"


class MaxFramePolicy(StrEnum):
    """What a spec that hard-codes env.max_frame gets (config ``max_frame_policy``)."""

    ERROR = "error"
    WARN = "warn"


class FrameBudgets(StrEnum):
    """Which frame budget a checkout's row runs at (config ``checkout.frame_budgets``)."""

    DOCUMENTED = "documented"
    SETTINGS = "settings"
    SPEC = "spec"


class Hardware(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True, slots=True)
class CheckoutOptions:
    """A real SLM-Lab checkout whose BENCHMARKS.md declares the matrix (the schema's defaults
    here too, for code that reads a checkout without a config; a test keeps them equal)."""

    root: str
    benchmarks: str = "docs/BENCHMARKS.md"
    envs: tuple[str, ...] = ()
    phases: tuple[str | int, ...] = ()
    frame_budgets: FrameBudgets = FrameBudgets.DOCUMENTED

    @property
    def benchmarks_path(self) -> Path:
        return Path(self.root) / self.benchmarks


@dataclass(frozen=True, slots=True)
class LocalStoreOptions:
    root: str
    dev_repo: str
    public_repo: str


@dataclass(frozen=True, slots=True)
class HfOptions:
    dev_repo: str
    public_repo: str
    endpoint: str | None
    env_file: str
    max_retries: int
    backoff_s: float
    max_wait_s: float
    max_workers: int


@dataclass(frozen=True, slots=True)
class PublishOptions:
    readme: str | None
    docs: str | None


@dataclass(frozen=True, slots=True)
class SlmLabOptions:
    command: str


@dataclass(frozen=True, slots=True)
class DstackOptions:
    """The dstack runner's options (schemas/dstack.schema.yaml), defaults filled in."""

    inner_runner: str
    hardware: Hardware
    env_hardware: Mapping[str, Hardware]
    resources: Mapping[str, Any] | None
    spot_policy: str | None
    max_duration: str | int | None
    max_price: float | None
    retry_events: tuple[str, ...] | None
    retry_duration: str | int | None
    poll_interval_s: float
    poll_backoff_max_s: float
    unreachable_timeout_s: float
    heartbeat_s: float
    max_relaunches: int
    setup_commands: tuple[str, ...] | None
    repo_dir: str | None
    install: str | None
    env: tuple[str, ...]
    dstack_bin: str


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    partition: str | None
    account: str | None
    qos: str | None
    extra: str
    mem_mb: int
    mem_margin: float
    gpu: int
    hardware: Hardware
    env_hardware: Mapping[str, Hardware]
    controller_timeout_s: float


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """The validated config (schemas/config.schema.yaml), frozen; one field per schema key, and
    ``source``: which file (or ``--config``) set each key, for error lines (``where``)."""

    runner: RunnerKind
    store: StoreKind
    time_limit: str
    max_frame_policy: MaxFramePolicy
    checkout: CheckoutOptions | None
    spec_root: str | None
    random_baseline: str | None
    status_rule: StatusRule
    seed: int | None
    search_reevaluate_top: int
    compare_reference: str | None
    compare_min_effect: float
    compare_gate: bool
    title: str
    local_store: LocalStoreOptions
    hf: HfOptions
    publish: PublishOptions
    slm_lab: SlmLabOptions
    dstack: DstackOptions
    slurm: SlurmOptions
    # The matrix as written (env id -> its entry), read-only; ``build_matrix`` checks it and
    # makes the typed ``Matrix``. None: the matrix comes from the checkout.
    envs: Mapping[str, Any] | None = None
    # Not a schema key: how error lines name the config; equal configs from other files are equal.
    source: ConfigSource = dataclasses.field(default=DEFAULT_SOURCE, compare=False, repr=False)

    @classmethod
    def from_validated(
        cls, config: Mapping[str, Any], source: ConfigSource = DEFAULT_SOURCE
    ) -> BenchConfig:
        """The typed config from a mapping ``load_config`` has validated (defaults filled in);
        ``source`` names the files it was read from (``slm_bench.config_source``)."""
        data = dict(config)
        checkout = data["checkout"]
        return _build(
            cls,
            data,
            source=source,
            runner=RunnerKind(data["runner"]),
            store=StoreKind(data["store"]),
            max_frame_policy=MaxFramePolicy(data["max_frame_policy"]),
            status_rule=StatusRule(data["status_rule"]),
            checkout=None if checkout is None else _checkout(checkout),
            local_store=_build(LocalStoreOptions, data["local_store"]),
            hf=_build(HfOptions, data["hf"]),
            publish=_build(PublishOptions, data["publish"]),
            slm_lab=_build(SlmLabOptions, data["slm_lab"]),
            dstack=_dstack(data["dstack"]),
            slurm=_slurm(data["slurm"]),
            envs=_freeze(data["envs"]) if data.get("envs") else None,
        )

    @classmethod
    def of(cls, config: BenchConfig | Mapping[str, Any]) -> BenchConfig:
        """``config`` typed: as is, or from the validated mapping a job's script is given."""
        return config if isinstance(config, BenchConfig) else cls.from_validated(config)

    @property
    def spec_dir(self) -> Path:
        """Where spec_file paths resolve: spec_root, else the checkout's root, else the workdir."""
        if self.spec_root:
            return Path(self.spec_root)
        if self.checkout is not None:
            return Path(self.checkout.root)
        return Path(".")

    def where(self, *path: str) -> str:
        """``FILE: KEY.SUBKEY``: how an error line about the value at ``path`` starts, naming
        the file (or ``--config``) that set it, as the plan's lines do."""
        return self.source.where(*path)

    @property
    def time_limit_s(self) -> float:
        """The time limit in seconds (``load_config`` has checked it, naming its source)."""
        return parse_duration(self.time_limit, self.where("time_limit"))

    @property
    def store_options(self) -> LocalStoreOptions | HfOptions:
        """The options of the store the config names."""
        return self.local_store if self.store is StoreKind.LOCAL else self.hf


_T = TypeVar("_T")


def _build(cls: type[_T], data: Mapping[str, Any], **typed: Any) -> _T:
    """``cls`` from ``data``, field by field (``typed`` values replace the raw ones): a key
    without a field, or a field without a key, is a model out of step with its schema."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown, missing = set(data) - names, names - set(data) - set(typed)
    if unknown or missing:
        raise KeyError(
            f"{cls.__name__}: config keys without a field {sorted(unknown)}, fields without a "
            f"config key {sorted(missing)} (slm_bench/config_model.py is out of step with "
            "schemas/)"
        )
    return cls(**{**{key: _freeze(value) for key, value in data.items()}, **typed})


def _freeze(value: Any) -> Any:
    """A read-only copy: mappings as MappingProxyType, lists as tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def plain(value: Any) -> Any:
    """A section (or value) back as the plain data a schema describes: dicts, lists, strings;
    for code that takes the schema's mapping (the dstack runner re-validates its options)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if isinstance(value, StrEnum):
        return value.value
    return value


def _checkout(data: Mapping[str, Any]) -> CheckoutOptions:
    return _build(CheckoutOptions, data, frame_budgets=FrameBudgets(data["frame_budgets"]))


def _hardware_map(data: Mapping[str, str]) -> Mapping[str, Hardware]:
    return MappingProxyType({env_id: Hardware(kind) for env_id, kind in data.items()})


def _dstack(data: Mapping[str, Any]) -> DstackOptions:
    return _build(
        DstackOptions,
        data,
        hardware=Hardware(data["hardware"]),
        env_hardware=_hardware_map(data["env_hardware"]),
    )


def _slurm(data: Mapping[str, Any]) -> SlurmOptions:
    return _build(
        SlurmOptions,
        data,
        hardware=Hardware(data["hardware"]),
        env_hardware=_hardware_map(data["env_hardware"]),
    )
