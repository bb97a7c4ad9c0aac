"""How much to trust a score: per-session MAs, IQM, stratified bootstrap CIs, normalised scores.

The statistics follow rliable (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
NeurIPS 2021): the interquartile mean (IQM, the mean of the middle 50% of runs, as
``scipy.stats.trim_mean(x, 0.25)``), percentile confidence intervals from a *stratified*
bootstrap (each task's runs are resampled with replacement within that task) and performance
profiles (the fraction of runs whose normalised score exceeds tau). A run is one session; a task
is one cell (per-cell statistics) or one env (aggregates).

rliable itself is not a dependency: rliable 1.2.0 requires ``arch<8``, and arch 7.2.0 (the newest it
allows) fails to import under pandas 3 (``deprecate_kwarg() missing ... 'new_arg_name'``), which
slm-bench uses; it would also pull statsmodels, arch, seaborn and scipy (~230 MB). The bootstrap
here is rliable's algorithm in NumPy, checked against ``scipy.stats.bootstrap`` in the tests.

Resampling uses a fixed seed, so the same sessions always give the same intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from slm_bench.formats.settings import Target
from slm_bench.formats.status_rule import progress_from

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
IQM_CUT = 0.25

# A statistic over strata: one (reps, n_i) array per stratum -> (reps,) values.
Statistic = Callable[[Sequence[np.ndarray]], np.ndarray]


def trimmed_mean(values: np.ndarray, cut: float = IQM_CUT) -> np.ndarray:
    """Mean of the last axis after dropping ``int(cut * n)`` values at each end (scipy's
    ``trim_mean``); ``cut=0.25`` is the IQM."""
    values = np.sort(np.asarray(values, dtype=float), axis=-1)
    n = values.shape[-1]
    k = int(cut * n)
    return values[..., k : n - k].mean(axis=-1)


def iqm(values: Sequence[float]) -> float:
    return float(trimmed_mean(np.asarray(values, dtype=float)))


def pooled_iqm(strata: Sequence[np.ndarray]) -> np.ndarray:
    """IQM of all runs of all strata together (rliable's aggregate IQM)."""
    return trimmed_mean(np.concatenate(strata, axis=-1))


def pooled_mean(strata: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(strata, axis=-1).mean(axis=-1)


def stratified_bootstrap(
    strata: Sequence[Sequence[float]],
    statistic: Statistic,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """``reps`` bootstrap replicates of ``statistic``: each stratum resampled within itself."""
    rng = np.random.default_rng(seed)
    resampled = []
    for stratum in strata:
        values = np.asarray(stratum, dtype=float)
        if values.size == 0:
            raise ValueError("stratified_bootstrap: a stratum has no values")
        picks = rng.integers(0, values.size, size=(reps, values.size))
        resampled.append(values[picks])
    return np.asarray(statistic(resampled), dtype=float)


def percentile_ci(
    strata: Sequence[Sequence[float]],
    statistic: Statistic,
    confidence: float = CONFIDENCE,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The percentile confidence interval of ``statistic`` under the stratified bootstrap."""
    replicates = stratified_bootstrap(strata, statistic, reps, seed)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(replicates, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def normalise(score: float, target: Target | None, random_return: float | None) -> float | None:
    """0 at the random policy's return, 1 at the target (the Status rule's progress measure).

    When the random return is unknown or not below the target, ``target - |target| - 1`` stands
    in for it (as for Status). None without a target.
    """
    if target is None or score is None or not math.isfinite(score):
        return None
    return float(progress_from(score, target.value, random_return))


def score_span(target: Target, random_return: float | None) -> float:
    """The score distance from the random policy (as ``normalise`` takes it) to the target."""
    one, zero = (progress_from(score, target.value, random_return) for score in (1.0, 0.0))
    return 1.0 / (one - zero)


@dataclass(frozen=True)
class Summary:
    """A sample of runs (session MAs, or normalised scores) summarised."""

    n: int
    mean: float
    std: float | None  # sample std (ddof=1), as SLM-Lab reports spreads; None for one run
    median: float
    min: float
    max: float
    iqm: float
    iqm_ci: tuple[float, float]
    mean_ci: tuple[float, float]

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "iqm": self.iqm,
            "iqm_ci": list(self.iqm_ci),
            "mean_ci": list(self.mean_ci),
        }


def summarise(strata: Sequence[Sequence[float]]) -> Summary:
    """Mean, std, IQM and their 95% stratified-bootstrap CIs over every run of every stratum."""
    pooled = np.concatenate([np.asarray(s, dtype=float) for s in strata])
    return Summary(
        n=int(pooled.size),
        mean=float(pooled.mean()),
        std=float(pooled.std(ddof=1)) if pooled.size > 1 else None,
        median=float(np.median(pooled)),
        min=float(pooled.min()),
        max=float(pooled.max()),
        iqm=float(pooled_iqm([pooled])),
        iqm_ci=percentile_ci(strata, pooled_iqm),
        mean_ci=percentile_ci(strata, pooled_mean),
    )


def difference_ci(
    new: Sequence[float], reference: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """CI of ``mean(new) - mean(reference)``, the two samples resampled independently."""

    def difference(strata: Sequence[np.ndarray]) -> np.ndarray:
        return strata[0].mean(axis=-1) - strata[1].mean(axis=-1)

    return percentile_ci([new, reference], difference, confidence)


def performance_profile(
    strata: Sequence[Sequence[float]], taus: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rliable's run-score performance profile: for each tau, the mean over tasks of the fraction
    of a task's runs scoring above tau; with a 95% stratified-bootstrap band (low, high)."""
    taus = np.asarray(taus, dtype=float)

    def profile(resampled: Sequence[np.ndarray]) -> np.ndarray:
        # each stratum: (..., n_i) -> (..., len(taus)) fractions above tau, then mean over tasks
        fractions = [(s[..., None, :] > taus[:, None]).mean(axis=-1) for s in resampled]
        return np.mean(fractions, axis=0)

    point = profile([np.asarray(s, dtype=float) for s in strata])
    replicates = stratified_bootstrap(strata, profile)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.percentile(replicates, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return point, low, high
