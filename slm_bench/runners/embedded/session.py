"""One embedded session: an SB3 model trained on the spec's env, checkpointed as SLM-Lab does.

A session records one session_df row per checkpoint (``frame % log_frequency < num_envs`` and the
last frame; recorder.py) and reports SLM-Lab's summary lines through a Reporter: the console
itself in this process, or a queue to the parent when sessions run in worker processes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slm_bench.runners.embedded.console import LOGGER_INFO, Reporter, log_record
from slm_bench.runners.embedded.nets import apply_nets
from slm_bench.runners.embedded.output import RunOutput
from slm_bench.runners.embedded.plan import TrainingPlan


def _resolve_kwargs(plan: TrainingPlan) -> dict[str, Any]:
    import torch

    kwargs = copy.copy(plan.kwargs)
    policy_kwargs = dict(kwargs.pop("policy_kwargs", {}))
    if "activation_fn" in policy_kwargs:
        policy_kwargs["activation_fn"] = getattr(torch.nn, policy_kwargs["activation_fn"])
    if "optimizer_class" in policy_kwargs:
        policy_kwargs["optimizer_class"] = getattr(torch.optim, policy_kwargs["optimizer_class"])
    return {**kwargs, "policy_kwargs": policy_kwargs}


def _env_wrapper(plan: TrainingPlan) -> Callable[[Any], Any] | None:
    """What wraps each Monitor-wrapped env: SLM-Lab's action rescaling and episode ends."""
    import numpy as np
    from gymnasium.wrappers import RescaleAction

    from slm_bench.runners.embedded.autoreset import NextStepAutoreset, SameStepAutoreset

    autoreset = NextStepAutoreset if plan.num_envs > 1 else SameStepAutoreset

    def wrap(env: Any) -> Any:
        if plan.rescale_actions:  # float32 bounds: the space's dtype (float64 makes gym warn)
            env = RescaleAction(env, np.float32(-1), np.float32(1))
        return autoreset(env) if plan.slm_lab_episode_ends else env

    return wrap if plan.rescale_actions or plan.slm_lab_episode_ends else None


def make_env(plan: TrainingPlan, seed: int):
    """The session's vector env: SB3's DummyVecEnv of Monitor-wrapped envs (+ VecNormalize),
    with SLM-Lab's action rescaling and episode ends where the plan says so."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = make_vec_env(
        plan.env_id,
        n_envs=plan.num_envs,
        seed=seed,
        env_kwargs=plan.env_kwargs,
        wrapper_class=_env_wrapper(plan),
    )
    return VecNormalize(env, **plan.normalize) if plan.normalize else env


def build_model(plan: TrainingPlan, seed: int):
    """The SB3 model a session trains (single-threaded CPU), with the plan's schedules set."""
    import stable_baselines3
    from stable_baselines3.common.logger import Logger

    cls = getattr(stable_baselines3, plan.algorithm)
    extra: dict[str, Any] = {}
    if plan.dqn is not None:  # SLM-Lab's DQN conventions on SB3's DQN
        from slm_bench.runners.embedded.dqn_model import SlmLabDQN

        cls, extra = SlmLabDQN, {"conventions": plan.dqn}
    if plan.algorithm == "A2C":  # SLM-Lab's value loss (a2c_model.py)
        from slm_bench.runners.embedded.a2c_model import SlmLabA2C

        cls, extra = SlmLabA2C, {"normalize_v_targets": plan.normalize_v_targets}
    policy: Any = plan.policy
    if policy == "SlmLabGaussianPolicy":
        from slm_bench.runners.embedded.gaussian import SlmLabGaussianPolicy

        policy = SlmLabGaussianPolicy
    model = cls(
        policy,
        make_env(plan, seed),
        seed=seed,
        device="cpu",
        verbose=0,
        **_resolve_kwargs(plan),
        **extra,
    )
    if plan.nets is not None:
        apply_nets(model, plan.nets)
    if plan.exploration_schedule is not None:  # SB3 reads it every step in DQN._on_step
        model.exploration_schedule = plan.exploration_schedule
    # SB3's default logger makes an (empty) /tmp/SB3-{timestamp} folder per learn(); ours keeps
    # the train/* values in memory only
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


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

    from slm_bench.runners.embedded.recorder import SessionRecorder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model(plan, seed)
        recorder = SessionRecorder(plan, session, prefix, report, output)
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
