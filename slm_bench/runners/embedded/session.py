"""One embedded session: an SB3 model trained on the spec's env, checkpointed as SLM-Lab does.

A session records one session_df row per checkpoint (``frame % log_frequency < num_envs`` and the
last frame) and reports SLM-Lab's summary lines through a Reporter: the console itself in this
process, or a queue to the parent when sessions run in worker processes.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from slm_bench.runners.embedded.console import (
    LOG_SUMMARY,
    LOGGER_INFO,
    Reporter,
    log_record,
    summary_message,
)
from slm_bench.runners.embedded.nets import apply_nets, group_learning_rates
from slm_bench.runners.embedded.output import MIN_ROWS_FOR_METRICS, RunOutput
from slm_bench.runners.embedded.plan import TrainingPlan

RETURN_WINDOW = 100  # total_reward: mean return of the last 100 finished episodes
# SLM-Lab rewrites a session's interim files at every checkpoint; here at most this often, so
# writing them costs about 1% of the training (a killed run's folder is at most this old).
INTERIM_EVERY_S = 10.0


def _resolve_kwargs(plan: TrainingPlan) -> dict[str, Any]:
    import torch

    kwargs = copy.copy(plan.kwargs)
    policy_kwargs = dict(kwargs.pop("policy_kwargs", {}))
    if "activation_fn" in policy_kwargs:
        policy_kwargs["activation_fn"] = getattr(torch.nn, policy_kwargs["activation_fn"])
    if "optimizer_class" in policy_kwargs:
        policy_kwargs["optimizer_class"] = getattr(torch.optim, policy_kwargs["optimizer_class"])
    return {**kwargs, "policy_kwargs": policy_kwargs}


def make_env(plan: TrainingPlan, seed: int):
    """The session's vector env: SB3's DummyVecEnv of Monitor-wrapped envs (+ VecNormalize)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = make_vec_env(plan.env_id, n_envs=plan.num_envs, seed=seed, env_kwargs=plan.env_kwargs)
    return VecNormalize(env, **plan.normalize) if plan.normalize else env


def build_model(plan: TrainingPlan, seed: int):
    """The SB3 model a session trains (single-threaded CPU), with the plan's schedules set."""
    import stable_baselines3
    from stable_baselines3.common.logger import Logger

    cls = getattr(stable_baselines3, plan.algorithm)
    model = cls(
        "MlpPolicy",
        make_env(plan, seed),
        seed=seed,
        device="cpu",
        verbose=0,
        **_resolve_kwargs(plan),
    )
    if plan.nets is not None:
        apply_nets(model, plan.nets)
    if plan.exploration_schedule is not None:  # SB3 reads it every step in DQN._on_step
        model.exploration_schedule = plan.exploration_schedule
    # SB3's default logger makes an (empty) /tmp/SB3-{timestamp} folder per learn(); ours keeps
    # the train/* values in memory only
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _session_callback(
    plan: TrainingPlan, session: int, prefix: str, report: Reporter, output: RunOutput | None
):
    """An SB3 callback recording SLM-Lab checkpoints: O(1) per step; per checkpoint a summary
    line and (with ``output``) the session's interim files, and the trial's from session 0."""
    from stable_baselines3.common.callbacks import BaseCallback

    class SessionRecorder(BaseCallback):
        def __init__(self) -> None:
            super().__init__(verbose=0)
            self.rows: list[list[float]] = []
            self.interim_at = -math.inf

        def _on_training_start(self) -> None:
            self.start = time.time()
            self.values = self.model.logger.name_to_value  # SB3's latest train/* values
            policy = self.model.policy
            self.optimizers = [
                module.optimizer
                for module in (
                    policy,
                    getattr(policy, "actor", None),
                    getattr(policy, "critic", None),
                )
                if module is not None and hasattr(module, "optimizer")
            ]

        def _on_step(self) -> bool:
            frame = self.num_timesteps
            if frame % plan.log_frequency < plan.num_envs or frame >= plan.max_frame:
                self._checkpoint(frame)
            return frame < plan.max_frame

        def _on_rollout_end(self) -> None:
            if plan.ent_coef_schedule is not None:
                self.model.ent_coef = plan.ent_coef_schedule.decay.value(self.num_timesteps)

        def _value(self, key: str) -> float:
            return float(self.values.get(key, math.nan))

        def _loss_and_extras(self) -> tuple[float, list[float]]:
            model, value = self.model, self._value
            if plan.algorithm in ("PPO", "A2C"):
                pg = (
                    "train/policy_gradient_loss" if plan.algorithm == "PPO" else "train/policy_loss"
                )
                entropy_loss = value("train/entropy_loss")
                loss = (
                    value(pg)
                    + model.ent_coef * entropy_loss
                    + model.vf_coef * value("train/value_loss")
                )
                if plan.algorithm == "PPO":
                    clip = float(model.clip_range(model._current_progress_remaining))
                    return loss, [clip, -entropy_loss]
                return loss, [float(model.ent_coef), -entropy_loss]
            if plan.algorithm == "DQN":
                return value("train/loss"), [float(model.exploration_rate)]
            return value("train/actor_loss") + value("train/critic_loss"), [value("train/ent_coef")]

        def _total_reward(self) -> float:
            returns = [info["r"] for info in self.model.ep_info_buffer]
            # SB3 adds this step's finished episodes to its buffer only after the callback.
            returns += [i["episode"]["r"] for i in self.locals.get("infos", ()) if "episode" in i]
            if returns:
                return float(np.mean(returns[-RETURN_WINDOW:]))
            # no episode finished yet: SLM-Lab reports the mean of the ongoing returns
            return float(np.mean([sum(r) for r in self.training_env.get_attr("rewards")]))

        def _checkpoint(self, frame: int) -> None:
            wall_t = int(time.time() - self.start)
            loss, extras = self._loss_and_extras()
            lrs = [lr for opt in self.optimizers for lr in group_learning_rates(opt)]
            if plan.num_envs == 1:  # SLM-Lab's clock: episodes so far, steps into this one
                episodes = len(self.training_env.get_attr("episode_returns")[0])
                t = len(self.training_env.get_attr("rewards")[0])
            else:  # a vector env's clock counts no episodes and never resets t
                episodes, t = math.nan, frame // plan.num_envs
            total_reward = self._total_reward()
            recent = [row[0] for row in self.rows[-(RETURN_WINDOW - 1) :]] + [total_reward]
            row = [
                total_reward,
                float(np.mean(recent)),
                loss,
                frame / wall_t if wall_t else 0.0,
                frame,
                wall_t,
                t,
                episodes,
                self.model._n_updates * plan.opt_steps_per_update,
                float(np.mean(lrs)) if lrs else math.nan,
                *extras,
            ]
            self.rows.append([float(v) for v in row])
            shown = np.asarray(self.rows[-1], dtype=np.float32)  # as SLM-Lab's float32 row
            message = summary_message(prefix, dict(zip(plan.columns, shown, strict=True)))
            report(log_record(session, *LOG_SUMMARY, message))
            if output is None or len(self.rows) < MIN_ROWS_FOR_METRICS or frame >= plan.max_frame:
                return  # the last checkpoint's files are the trial's final ones
            if time.monotonic() - self.interim_at >= INTERIM_EVERY_S:
                self.interim_at = time.monotonic()
                output.write_session(session, self.rows)
                if session == 0:
                    output.write_interim_trial()

    return SessionRecorder()


def train_session(
    plan: TrainingPlan,
    session: int,
    seed: int,
    prefix: str,
    model_path: Path,
    report: Reporter,
    output: RunOutput | None = None,
) -> list[list[float]]:
    """Train one session; return its session_df rows (columns ``plan.columns``).

    Saves the SB3 model (a zip archive) at ``model_path``; with ``output``, writes the session's
    interim files at every checkpoint.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model(plan, seed)
        recorder = _session_callback(plan, session, prefix, report, output)
        # log_interval=None: SB3 never dumps (and clears) the train/* values the recorder reads
        model.learn(total_timesteps=plan.max_frame, callback=recorder, log_interval=None)
        model.save(model_path)
        if plan.normalize:
            model.get_env().save(str(model_path).replace("_model.pt", "_vecnormalize.pkl"))
        model.get_env().close()
    finally:
        torch.set_num_threads(threads)
    report(log_record(session, *LOGGER_INFO, f"Session {session} done"))
    return recorder.rows


# Worker-process side of the session pool: the queue that carries log records to the parent.
_worker_queue: Any = None


def init_worker(log_queue: Any) -> None:
    global _worker_queue
    _worker_queue = log_queue


def train_session_in_worker(
    plan: TrainingPlan,
    session: int,
    seed: int,
    prefix: str,
    model_path: Path,
    output: RunOutput | None = None,
) -> list[list[float]]:
    return train_session(plan, session, seed, prefix, model_path, _worker_queue.put, output)
