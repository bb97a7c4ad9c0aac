"""One session's checkpoints as SLM-Lab records them: the session_df row, the summary line and,
at most every INTERIM_EVERY_S, the session's interim files.

An SB3 callback (``SessionRecorder``) calls the pure readers below; it is O(1) per step and
does its work at a checkpoint (``frame % log_frequency < num_envs``, and the last frame). This
module imports Stable-Baselines3, so the session imports it when it trains, not before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from slm_bench.runners.embedded.console import LOG_SUMMARY, Reporter, log_record, summary_message
from slm_bench.runners.embedded.nets import group_learning_rates
from slm_bench.runners.embedded.output import MIN_ROWS_FOR_METRICS, RunOutput
from slm_bench.runners.embedded.plan import TrainingPlan

RETURN_WINDOW = 100  # total_reward: mean return of the last 100 finished episodes
# SLM-Lab rewrites a session's interim files at every checkpoint; here at most this often, so
# writing them costs about 1% of the training (a killed run's folder is at most this old).
INTERIM_EVERY_S = 10.0


def loss_and_extras(
    algorithm: str, model: Any, value: Callable[[str], float]
) -> tuple[float, list[float]]:
    """SLM-Lab's loss and the algorithm's extra columns, from SB3's latest train/* values."""
    if algorithm in ("PPO", "A2C"):
        pg = "train/policy_gradient_loss" if algorithm == "PPO" else "train/policy_loss"
        entropy_loss = value("train/entropy_loss")
        loss = value(pg) + model.ent_coef * entropy_loss + model.vf_coef * value("train/value_loss")
        if algorithm == "PPO":
            clip = float(model.clip_range(model._current_progress_remaining))
            return loss, [clip, -entropy_loss]
        return loss, [float(model.ent_coef), -entropy_loss]
    if algorithm == "DQN":
        return value("train/loss"), [float(model.exploration_rate)]
    return value("train/actor_loss") + value("train/critic_loss"), [value("train/ent_coef")]


def total_reward(
    episode_infos: Iterable[Mapping], step_infos: Iterable[Mapping], ongoing: list[list[float]]
) -> float:
    """The mean return of the last RETURN_WINDOW finished episodes (SB3's buffer, then this
    step's, which SB3 adds only after the callback); with none finished yet, SLM-Lab's mean of
    the ongoing returns (``ongoing``: each env's rewards so far)."""
    returns = [info["r"] for info in episode_infos]
    returns += [info["episode"]["r"] for info in step_infos if "episode" in info]
    if returns:
        return float(np.mean(returns[-RETURN_WINDOW:]))
    return float(np.mean([sum(rewards) for rewards in ongoing]))


def session_clock(num_envs: int, env: Any, frame: int) -> tuple[float, int]:
    """SLM-Lab's (epi, t): with one env, episodes so far and steps into this one; a vector env's
    clock counts no episodes and never resets t."""
    if num_envs == 1:
        return len(env.get_attr("episode_returns")[0]), len(env.get_attr("rewards")[0])
    return math.nan, frame // num_envs


class InterimFiles:
    """A session's interim files, rewritten at most every INTERIM_EVERY_S (session 0 also
    rewrites the trial's); none before SLM-Lab has metrics, none at the last checkpoint, whose
    files are the trial's final ones."""

    def __init__(self, output: RunOutput | None, session: int, max_frame: int) -> None:
        self.output, self.session, self.max_frame = output, session, max_frame
        self.written_at = -math.inf

    def checkpoint(self, rows: list[list[float]], frame: int) -> None:
        if self.output is None or len(rows) < MIN_ROWS_FOR_METRICS or frame >= self.max_frame:
            return
        if time.monotonic() - self.written_at >= INTERIM_EVERY_S:
            self.written_at = time.monotonic()
            self.output.write_session(self.session, rows)
            if self.session == 0:
                self.output.write_interim_trial()


class SessionRecorder(BaseCallback):
    """An SB3 callback recording SLM-Lab checkpoints: per checkpoint a session_df row, a summary
    line (through ``report``) and (with ``output``) the interim files."""

    def __init__(
        self,
        plan: TrainingPlan,
        session: int,
        prefix: str,
        report: Reporter,
        output: RunOutput | None,
    ) -> None:
        super().__init__(verbose=0)
        self.plan, self.session, self.prefix, self.report = plan, session, prefix, report
        self.interim = InterimFiles(output, session, plan.max_frame)
        self.rows: list[list[float]] = []

    def _on_training_start(self) -> None:
        self.start = time.time()
        self.values = self.model.logger.name_to_value  # SB3's latest train/* values
        policy = self.model.policy
        modules = (policy, getattr(policy, "actor", None), getattr(policy, "critic", None))
        self.optimizers = [
            m.optimizer for m in modules if m is not None and hasattr(m, "optimizer")
        ]

    def _on_step(self) -> bool:
        frame, plan = self.num_timesteps, self.plan
        if frame % plan.log_frequency < plan.num_envs or frame >= plan.max_frame:
            self._checkpoint(frame)
        return frame < plan.max_frame

    def _on_rollout_end(self) -> None:
        if self.plan.ent_coef_schedule is not None:
            assert isinstance(self.model, OnPolicyAlgorithm)  # the plans of PPO and A2C have one
            self.model.ent_coef = self.plan.ent_coef_schedule.decay.value(self.num_timesteps)

    def _value(self, key: str) -> float:
        return float(self.values.get(key, math.nan))

    def _row(self, frame: int) -> list[float]:
        """The session_df row at ``frame`` (columns ``plan.columns``)."""
        wall_t = int(time.time() - self.start)
        loss, extras = loss_and_extras(self.plan.algorithm, self.model, self._value)
        lrs = [lr for opt in self.optimizers for lr in group_learning_rates(opt)]
        episodes, t = session_clock(self.plan.num_envs, self.training_env, frame)
        reward = total_reward(
            self.model.ep_info_buffer or (),  # None only before training starts
            self.locals.get("infos", ()),
            self.training_env.get_attr("rewards"),
        )
        recent = [row[0] for row in self.rows[-(RETURN_WINDOW - 1) :]] + [reward]
        row = [
            reward,
            float(np.mean(recent)),
            loss,
            frame / wall_t if wall_t else 0.0,
            frame,
            wall_t,
            t,
            episodes,
            self.model._n_updates * self.plan.opt_steps_per_update,
            float(np.mean(lrs)) if lrs else math.nan,
            *extras,
        ]
        return [float(v) for v in row]

    def _checkpoint(self, frame: int) -> None:
        self.rows.append(self._row(frame))
        shown = np.asarray(self.rows[-1], dtype=np.float32)  # as SLM-Lab's float32 row
        message = summary_message(self.prefix, dict(zip(self.plan.columns, shown, strict=True)))
        self.report(log_record(self.session, *LOG_SUMMARY, message))
        self.interim.checkpoint(self.rows, frame)
