"""The embedded search's fresh-seed re-evaluation of its best trials, before anything is picked.

A trial's MA is one draw: with 2 trials in 8 leaving a session at the random policy, the best of
N trials is an optimistic draw, and one retrain is one more draw. So the ``top`` trials by their
own MA are each trained once more, with every session of the spec (SLM-Lab's second stage after
single-session ASHA trials: multi-session trials), on seeds no trial used; the pick is then made
from those fresh sessions (``results.robust_choice``).

Seeds: trial ``i``'s sessions get ``base + 1e5 * i + 1e3 * s`` (SLM-Lab's numbering), and trials
are ``0..n_trials-1``; evaluation ``j`` runs as trial ``n_trials + j``, so its seeds are new as
long as a run has fewer than 100 sessions (``1e3 * s < 1e5``), which the driver checks. The
seeds each run really used are read back from its folder and recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.formats.session_scores import session_mas, session_seeds

MAX_SESSIONS = 100  # 1e3 * session must stay below the 1e5 between trials' seeds


@dataclass
class Evaluation:
    """One fresh-seed training of a trial's values."""

    trial: int
    run: int  # the trial number it ran as (its seeds' 1e5 step)
    sessions: list[float] = field(default_factory=list)
    seeds: list[int] | None = None
    total_reward_ma: float = math.nan
    error: str = ""

    def as_dict(self) -> dict:
        return {
            "trial": self.trial,
            "run": self.run,
            "sessions": self.sessions,
            "seeds": self.seeds,
            "total_reward_ma": self.total_reward_ma,
            **({"error": self.error} if self.error else {}),
        }


def run_sessions(folder: Path) -> tuple[list[float], list[int] | None]:
    """A finished run folder's per-session final MAs and the seeds it recorded."""
    values, _, _ = session_mas(folder)
    return values, session_seeds(folder)["seeds"]


def check_session_count(max_session: object, where: str) -> None:
    if isinstance(max_session, int) and max_session >= MAX_SESSIONS:
        raise BenchError(
            f"{where}: meta.max_session {max_session}: a search's fresh seeds need fewer than"
            f" {MAX_SESSIONS} sessions (trials' seeds are 1e5 apart, sessions' 1e3)"
        )


# A launcher trains one body as run number ``run`` and returns its folder (None on failure,
# with the error): the driver's subprocess launcher, or a stand-in in the unit tests.
Launch = Callable[[int, dict], tuple[Path | None, str]]


def reevaluate(
    ranked: list[tuple[int, dict]],
    n_trials: int,
    launch: Launch,
    say: Callable[[str], None],
    workers: int = 1,
) -> list[Evaluation]:
    """Train each ``(trial, body)`` of ``ranked`` (best first) once, as run ``n_trials + j``,
    up to ``workers`` at once."""
    evaluations = [Evaluation(trial=trial, run=n_trials + j) for j, (trial, _) in enumerate(ranked)]
    bodies = [body for _, body in ranked]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ranked) or 1))) as pool:
        list(pool.map(lambda e, body: _one(e, body, launch, say), evaluations, bodies))
    return evaluations


def _one(evaluation: Evaluation, body: dict, launch: Launch, say: Callable[[str], None]) -> None:
    folder, error = launch(evaluation.run, body)
    if folder is None:
        evaluation.error = error
    else:
        try:
            evaluation.sessions, evaluation.seeds = run_sessions(folder)
        except BenchError as failure:
            evaluation.error = str(failure)
    trial = evaluation.trial
    if evaluation.sessions:
        evaluation.total_reward_ma = sum(evaluation.sessions) / len(evaluation.sessions)
        shown = ", ".join(f"{v:.2f}" for v in evaluation.sessions)
        say(
            f"re-evaluation of trial {trial} on fresh seeds {evaluation.seeds}: total_reward_ma"
            f" {evaluation.total_reward_ma:.2f} (sessions {shown})"
        )
    else:
        say(f"re-evaluation of trial {trial} failed: {evaluation.error}")
