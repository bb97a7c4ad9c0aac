"""Sessions that never learned: ended at a random policy's return, or with the policy's entropy
where it started (maximal, for discrete actions).

A trial's MA is SLM-Lab's mean over its sessions, so one session left at the random policy pulls
a cell's score far down (A2C Acrobot: three sessions near -85 and one at -500 give -188). The
table keeps SLM-Lab's mean; this module names such sessions so the flag can explain it.

A session never learned when either holds:

- **Return at random**: its final MA is at most ``RETURN_BAND`` (5%) of the way from the random
  policy's return (SLM-Lab's ``_random_baseline.json``) to the target, on the Status rule's
  progress scale (``stats.normalise``: 0 = random, 1 = target). Relative to the gap, so one band
  fits CartPole (random 22.97, target 400: at most 41.8) and Acrobot (-499.86 to -100: at most
  -479.9); a session that learned something but scored low (Acrobot -300: 50%) is not flagged.
  Without a known random return or a target there is no band, and the check says so.
- **Entropy at the start** (where the session CSV has an ``entropy`` column, as SLM-Lab's and the
  embedded runner's policy-gradient runs do): for ``n`` discrete actions, the final entropy is
  within ``ENTROPY_TOLERANCE`` (1%) of the maximum ``ln n`` (two actions: the policy still picks
  each with probability within 0.44..0.56); the stuck Acrobot sessions ended at 1.095 and 1.098 of
  ln 3 = 1.0986. A Gaussian policy has no maximal entropy (it grows with the std), so for
  continuous actions the test is "unchanged since the first checkpoint": within
  ``CONTINUOUS_TOLERANCE`` (0.02 nats) per action dimension, a std that moved by less than 2%.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import RunLayout
from slm_bench.formats.settings import Target
from slm_bench.statistics.stats import normalise

RETURN_BAND = 0.05
ENTROPY_TOLERANCE = 0.01
CONTINUOUS_TOLERANCE = 0.02

RULE = {
    "return_band": f"final MA within {RETURN_BAND:.0%} of the random-to-target gap above the"
    " random policy's return (or below it)",
    "entropy_discrete": f"final entropy >= {1 - ENTROPY_TOLERANCE:.0%} of ln(n_actions)",
    "entropy_continuous": f"final entropy within {CONTINUOUS_TOLERANCE} nats per action"
    " dimension of the first checkpoint's",
}


@lru_cache(maxsize=64)
def action_space(env_id: str) -> tuple[str, int] | None:
    """("discrete", n) or ("continuous", dims) of a gymnasium env; None when it cannot be made
    here (an ALE env: ale_py is not a dependency of slm-bench): the entropy check is then
    reported as not run, and the return check still applies."""
    try:
        import gymnasium as gym

        env = gym.make(env_id)
    except Exception:  # noqa: BLE001 - any failure to build the env only disables this check
        return None
    try:
        space = env.action_space
        if hasattr(space, "n"):
            return "discrete", int(space.n)
        shape = getattr(space, "shape", None) or (1,)
        return "continuous", int(math.prod(shape))
    finally:
        env.close()


def _entropies(layout: RunLayout, s: int) -> tuple[float, float] | None:
    """The first and last finite ``entropy`` of session ``s``'s train CSV, if it has one."""
    csv = layout.session_df_csv(s, "train")
    if not csv.is_file():
        return None
    import pandas as pd

    try:
        frame = pd.read_csv(csv)
    except (OSError, ValueError) as error:
        raise BenchError(f"{csv}: unreadable session CSV ({error})") from None
    if "entropy" not in frame.columns:
        return None
    values = pd.to_numeric(frame["entropy"], errors="coerce").dropna()
    values = values[values.map(math.isfinite)]
    if values.empty:
        return None
    return float(values.iloc[0]), float(values.iloc[-1])


def entropy_reason(entropies: tuple[float, float] | None, space: tuple[str, int] | None):
    """The entropy evidence of one session, or None when it shows learning or cannot be read."""
    if entropies is None or space is None:
        return None
    first, final = entropies
    kind, size = space
    if kind == "discrete":
        top = math.log(size) if size > 1 else 0.0
        if top > 0 and final >= (1 - ENTROPY_TOLERANCE) * top:
            return f"entropy {final:.3f} at its maximum ln {size} = {top:.3f}"
        return None
    if abs(final - first) <= CONTINUOUS_TOLERANCE * size:
        return f"entropy {final:.3f} unchanged since the first checkpoint ({first:.3f})"
    return None


def return_reason(
    final_ma: float, target: Target | None, random_return: float | None
) -> str | None:
    """The return evidence of one session, or None when it is above the band (or unknown)."""
    if target is None or random_return is None or not math.isfinite(final_ma):
        return None
    progress = normalise(final_ma, target, random_return)
    if progress is not None and progress <= RETURN_BAND:
        return f"final MA {final_ma:.2f} at the random policy's {random_return:.2f}"
    return None


def never_learned(
    layout: RunLayout,
    final_mas: list[float],
    env_id: str,
    target: Target | None,
    random_return: float | None,
) -> dict:
    """Which sessions never learned, why, and what could not be checked."""
    space = action_space(env_id)
    sessions, unchecked = [], []
    if target is None or random_return is None:
        unchecked.append("return: no target or no random-policy return for this env")
    for s, final_ma in enumerate(final_mas):
        entropies = _entropies(layout, s)
        if entropies is not None and space is None:
            unchecked.append(f"entropy: {env_id}'s action space is not available here")
        reasons = [
            r
            for r in (
                return_reason(final_ma, target, random_return),
                entropy_reason(entropies, space),
            )
            if r
        ]
        if reasons:
            sessions.append({"session": s, "final_ma": final_ma, "reasons": reasons})
    count = len(final_mas)
    return {
        "count": len(sessions),
        "of": count,
        "sessions": sessions,
        "note": note(len(sessions), count),
        "unchecked": sorted(set(unchecked)),
        "rule": RULE,
    }


def note(stuck: int, total: int) -> str:
    """ "1 of 4 sessions never learned" (empty when none)."""
    if not stuck:
        return ""
    noun = "session" if total == 1 else "sessions"
    return f"{stuck} of {total} {noun} never learned"


def note_of(flagged: dict | None) -> str:
    """The note of a ``never_learned`` record (empty when there is none, or none is flagged)."""
    flagged = flagged or {}
    return note(int(flagged.get("count") or 0), int(flagged.get("of") or 0))


def cell_flag(cell_dir: Path) -> dict | None:
    """The ``never_learned`` record of a cell's stats.json, when that file describes the run the
    cell's marker (run.json) names; None when either is missing or they name different runs (a
    stats.json left from an earlier run says nothing of the current one)."""
    records = []
    for name in ("stats.json", "run.json"):
        path = Path(cell_dir) / name
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise BenchError(f"{path}: unreadable JSON ({error})") from None
    stats, marker = records
    if not isinstance(stats, dict) or not isinstance(marker, dict):
        return None
    if stats.get("data_folder") != marker.get("data_folder"):
        return None
    return stats.get("never_learned")
