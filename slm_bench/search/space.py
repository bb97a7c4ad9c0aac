"""A spec's ``search:`` block, read with SLM-Lab's semantics, as Optuna distributions.

SLM-Lab (slm_lab/experiment/search.py) flattens ``search`` and reads each key as
``path.to.key__DIST: [args]``, then calls Ray Tune's ``tune.DIST(*args)`` (``choice`` takes the
list itself). The same distributions are expressed here for Optuna's define-and-run API, so the
embedded runner samples what ``slm-lab run ... search`` would sample:

- ``uniform(a, b)``, ``loguniform(a, b)``: floats in [a, b];
- ``quniform(a, b, q)``, ``qloguniform(a, b, q)``: the same, rounded to a multiple of q;
- ``randint(a, b)``, ``lograndint(a, b)``: integers in [a, b) (upper bound excluded);
- ``qrandint(a, b, q)``, ``qlograndint(a, b, q)``: multiples of q in [a, b] (upper bound included);
- ``randn(mean, sd)``, ``qrandn(mean, sd, q)``: normal, sampled through its quantile;
- ``choice([...])``. ``grid_search`` is refused, as SLM-Lab refuses it with Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import optuna

from slm_bench.errors import BenchError
from slm_bench.formats.spec import CELL_CONTROLLED, cell_controlled, has_path
from slm_bench.formats.spec_keys import read_by_slm_lab

DISTRIBUTIONS = (
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "randn",
    "qrandn",
    "randint",
    "qrandint",
    "lograndint",
    "qlograndint",
    "choice",
)
_ARITY = {"uniform": 2, "loguniform": 2, "randint": 2, "lograndint": 2, "randn": 2}


def flatten(block: Mapping, prefix: str = "") -> dict[str, object]:
    """SLM-Lab's util.flatten_dict: nested keys joined with dots."""
    flat: dict[str, object] = {}
    for key, value in block.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


@dataclass(frozen=True)
class Dimension:
    """One searched key: its spec path, SLM-Lab distribution name and arguments."""

    path: str
    dist: str
    args: tuple

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution sampled for this key (before quantising, see ``value``)."""
        d, a = self.dist, self.args
        if d == "choice":
            return optuna.distributions.CategoricalDistribution(list(a))
        if d in ("uniform", "quniform"):
            return optuna.distributions.FloatDistribution(a[0], a[1])
        if d in ("loguniform", "qloguniform"):
            return optuna.distributions.FloatDistribution(a[0], a[1], log=True)
        if d in ("randn", "qrandn"):  # the quantile of a normal; mapped in ``value``
            return optuna.distributions.FloatDistribution(1e-6, 1 - 1e-6)
        if d == "randint":
            return optuna.distributions.IntDistribution(int(a[0]), int(a[1]) - 1)
        if d == "lograndint":
            return optuna.distributions.IntDistribution(int(a[0]), int(a[1]) - 1, log=True)
        if d == "qrandint":
            return optuna.distributions.IntDistribution(int(a[0]), int(a[1]), step=int(a[2]))
        # qlograndint: log-spaced, rounded to a multiple of q in ``value``
        return optuna.distributions.IntDistribution(int(a[0]), int(a[1]), log=True)

    def value(self, sampled: object) -> object:
        """The spec value for an Optuna sample (quantised and typed as Ray Tune would)."""
        d, a = self.dist, self.args
        if d == "choice":
            return sampled
        # every other distribution is an Optuna Float- or IntDistribution
        assert isinstance(sampled, int | float), f"{self.path}: {sampled!r} is not a number"
        if d in ("randn", "qrandn"):
            sampled = NormalDist(a[0], a[1]).inv_cdf(float(sampled))
        if d in ("quniform", "qloguniform", "qrandn"):
            q = a[2]
            return round(round(float(sampled) / q) * q, 12)
        if d == "qlograndint":
            q = int(a[2])
            return int(min(max(round(int(sampled) / q) * q, a[0]), a[1]))
        if d in ("uniform", "loguniform", "randn"):
            return float(sampled)
        return sampled


def _dimension(key: str, args: object, where: str) -> Dimension:
    path, sep, dist = key.rpartition("__")
    if not sep or not path:
        raise BenchError(f"{where}: search.{key}: expected path.to.key__DIST (e.g. gamma__uniform)")
    if dist == "grid_search":
        raise BenchError(
            f"{where}: search.{key}: grid_search is not supported with Optuna (SLM-Lab's rule);"
            " use choice"
        )
    if dist not in DISTRIBUTIONS:
        raise BenchError(
            f"{where}: search.{key}: unknown distribution {dist!r}"
            f" (expected one of {', '.join(DISTRIBUTIONS)})"
        )
    if not isinstance(args, list) or not args:
        raise BenchError(f"{where}: search.{key}: expected a list of arguments, got {args!r}")
    if dist != "choice":
        arity = _ARITY.get(dist, 3)
        if len(args) != arity or not all(_is_number(x) for x in args):
            raise BenchError(f"{where}: search.{key}: {dist} expects {arity} numbers, got {args!r}")
        low, high = args[0], args[1]
        if dist not in ("randn", "qrandn") and not low < high:
            raise BenchError(f"{where}: search.{key}: expected low < high, got {args!r}")
        if dist.startswith(("log", "qlog")) and low <= 0:
            raise BenchError(f"{where}: search.{key}: {dist} needs low > 0, got {args!r}")
        if dist.startswith("q") and args[2] <= 0:
            raise BenchError(f"{where}: search.{key}: q must be > 0, got {args!r}")
    return Dimension(path, dist, tuple(args))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    @property
    def paths(self) -> list[str]:
        return [d.path for d in self.dimensions]

    def values(self, params: Mapping[str, object]) -> dict[str, object]:
        """Spec path -> value for one Optuna trial's params (keyed by spec path)."""
        return {d.path: d.value(params[d.path]) for d in self.dimensions}


def read_space(spec: Mapping, where: str) -> SearchSpace:
    """The search space of a resolved spec body; a spec without one names what to add."""
    block = spec.get("search")
    if not isinstance(block, Mapping) or not block:
        raise BenchError(
            f"{where}: no search block to search over; add one to the spec, e.g."
            " `search: {agent.algorithm.gamma__uniform: [0.95, 0.999]}` and meta.max_trial"
        )
    dims = tuple(_dimension(k, v, where) for k, v in flatten(block).items())
    for dim in dims:
        _check_key(spec, dim, where)
    return SearchSpace(dims)


def _check_key(spec: Mapping, dim: Dimension, where: str) -> None:
    """A searched key must be one the trial's spec has or SLM-Lab reads, and never one the cell
    sets: SLM-Lab's search writes any key (pydash.set_), so a typo would be searched silently."""
    key = f"search.{dim.path}__{dim.dist}"
    controlled = cell_controlled(dim.path)
    if controlled:
        raise BenchError(
            f"{where}: {key}: {controlled} is set by {CELL_CONTROLLED[controlled]}, not by a"
            " search (a trial would run outside its cell); remove it from the search block"
        )
    if not has_path(spec, dim.path) and not read_by_slm_lab(spec, dim.path):
        raise BenchError(
            f"{where}: {key}: {dim.path} is not in the spec and SLM-Lab does not read it for"
            " this agent (a typo?); set it in the spec first to search it"
        )


def rule_budget(n_dimensions: int) -> int:
    """Trials for ``n`` searched dimensions by SLM-Lab's rule of about 3-4 per dimension:
    4 for one, 8 for two or three, 16 for four, then 4 per dimension."""
    if n_dimensions <= 1:
        return 4
    if n_dimensions <= 3:
        return 8
    return 16 if n_dimensions == 4 else 4 * n_dimensions


def trial_budget(spec: Mapping, space: SearchSpace, where: str) -> tuple[int, list[str]]:
    """(trials to run, warnings): ``meta.max_trial`` when set, else the rule; warn when over it."""
    rule = rule_budget(len(space.dimensions))
    max_trial = spec.get("meta", {}).get("max_trial")
    if max_trial is None:
        return rule, []
    if not isinstance(max_trial, int) or isinstance(max_trial, bool) or max_trial < 1:
        raise BenchError(f"{where}: meta.max_trial: expected a positive integer, got {max_trial!r}")
    warnings = []
    if max_trial > rule:
        warnings.append(
            f"{where}: meta.max_trial {max_trial} exceeds the budget rule for"
            f" {len(space.dimensions)} searched dimensions ({rule} trials, about 3-4 per dimension)"
        )
    return max_trial, warnings
