"""The embedded runner: an SLM-Lab spec trained with Stable-Baselines3, written as an SLM-Lab run.

``plan_training`` maps a spec body onto an SB3 algorithm and its keyword arguments;
``run_trial`` trains ``meta.max_session`` sessions (in parallel processes), checkpoints them the
way SLM-Lab does, computes SLM-Lab's metrics and writes ``data/{name}_{ts}`` in SLM-Lab's layout
while printing SLM-Lab's console lines. It is how slm-bench runs where SLM-Lab is not installed.

Mapping (SLM-Lab -> SB3): PPO -> PPO, ActorCritic -> A2C, VanillaDQN/DQN/DoubleDQN -> DQN,
SoftActorCritic -> SAC (continuous actions only). Anything SB3 cannot express is either refused
with a BenchError or, where a close equivalent exists, mapped and listed in ``TrainingPlan.notes``
(printed as WARNING lines at the start of the run).
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from slm_bench.atomic import staged_dir, write_json, write_text
from slm_bench.baseline import random_return
from slm_bench.errors import BenchError
from slm_bench.logs import console_line, output_message, running_message, trial_metrics_message
from slm_bench.metrics import session_metrics, trial_metrics
from slm_bench.run_folder import FOLDER_TS_FORMAT, RunLayout, folder_name

# SLM-Lab algorithm name -> SB3 algorithm class name.
SB3_ALGORITHMS = {
    "PPO": "PPO",
    "ActorCritic": "A2C",
    "VanillaDQN": "DQN",
    "DQN": "DQN",
    "DoubleDQN": "DQN",
    "SoftActorCritic": "SAC",
}
# session_df columns: SLM-Lab's core columns, then each algorithm's registered extras.
CORE_COLUMNS = (
    "total_reward",
    "total_reward_ma",
    "loss",
    "fps",
    "frame",
    "wall_t",
    "t",
    "epi",
    "opt_step",
    "lr",
)
EXTRA_COLUMNS = {
    "PPO": ("clip_eps", "entropy"),
    "A2C": ("entropy_coef", "entropy"),
    "DQN": ("explore_var",),
    "SAC": ("alpha",),
}
RETURN_WINDOW = 100  # total_reward: mean return of the last 100 finished episodes
PROGRESS_FRACTION = 0.1  # a progress line per session at most every 10% of training
DECAYS = ("no_decay", "linear_decay", "rate_decay")

# SLM-Lab env keys that configure SLM-Lab itself; every other env key goes to gym.make.
_SLM_ENV_KEYS = {
    "name",
    "num_envs",
    "max_t",
    "max_frame",
    "normalize_obs",
    "normalize_reward",
    "clip_obs",
    "clip_reward",
}
# hid_layers_activation / arc activation modules -> torch.nn class names.
_ACTIVATIONS = {
    name.lower(): name
    for name in ("ReLU", "Tanh", "SELU", "ELU", "LeakyReLU", "Sigmoid", "GELU", "SiLU", "Mish")
}
_LINEAR_LAYERS = ("LazyLinear", "Linear")
_OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD", "Adamax", "NAdam", "RAdam")

# ---------------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True)
class Decay:
    """An SLM-Lab variable schedule (``*_spec`` with name, start/end values and steps).

    ``step`` is the env frame, as SLM-Lab's VarScheduler uses it. The formulas are SLM-Lab's
    math_util.no_decay / linear_decay / rate_decay (rate: 20 compounding 0.9 decays).
    """

    name: str
    start_val: float
    end_val: float
    start_step: float = 0
    end_step: float = 0

    def value(self, step: float) -> float:
        if self.name == "no_decay" or step < self.start_step:
            return self.start_val
        if step >= self.end_step:  # also guards a zero-length schedule
            return self.end_val
        if self.name == "linear_decay":
            slope = (self.end_val - self.start_val) / (self.end_step - self.start_step)
            return max(slope * (step - self.start_step) + self.start_val, self.end_val)
        step_per_decay = (self.end_step - self.start_step) / 20.0  # rate_decay
        return max(
            0.9 ** ((step - self.start_step) / step_per_decay) * self.start_val, self.end_val
        )


@dataclass(frozen=True)
class FrameSchedule:
    """An SB3 schedule (a function of progress remaining, 1 -> 0) following a Decay in frames."""

    decay: Decay
    total_frames: int

    def __call__(self, progress_remaining: float) -> float:
        return self.decay.value((1.0 - progress_remaining) * self.total_frames)


# ---------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True)
class TrainingPlan:
    """How a spec trains with SB3: the algorithm, its constructor kwargs and the run settings.

    ``kwargs`` holds plain values, FrameSchedules (SB3 accepts callables for learning_rate and
    clip_range) and, in ``policy_kwargs``, torch.nn / torch.optim class *names* (resolved when
    the model is built, so a plan stays picklable and readable).
    """

    algorithm: str  # SB3 class name
    spec_algorithm: str  # SLM-Lab agent.algorithm.name
    env_id: str
    num_envs: int
    max_frame: int
    max_session: int
    log_frequency: int
    kwargs: dict[str, Any]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    normalize: dict[str, Any] | None = None  # VecNormalize kwargs when the spec normalises
    ent_coef_schedule: FrameSchedule | None = None  # set per rollout (SB3 takes a float)
    exploration_schedule: FrameSchedule | None = None  # replaces SB3 DQN's linear schedule
    opt_steps_per_update: int = 1  # optimizer steps per SB3 `_n_updates` tick
    rigorous_eval: bool = False
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return CORE_COLUMNS + EXTRA_COLUMNS[self.algorithm]

    def checkpoint_frames(self, limit: int | None = None) -> list[int]:
        """Frames at which a session checkpoints (the first ``limit`` of them): as in SLM-Lab,
        ``frame % log_frequency < num_envs`` over the frames a vector env reaches, and the last."""
        frames: list[int] = []
        frame = 0
        while frame < self.max_frame and (limit is None or len(frames) < limit):
            frame += self.num_envs
            if frame % self.log_frequency < self.num_envs or frame >= self.max_frame:
                frames.append(frame)
        return frames


def _lookup(spec: Mapping, path: str, default: Any = None) -> Any:
    node: Any = spec
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return default if node is None else node


class _SpecReader:
    """Typed access to a spec body; every error names the spec and the field."""

    def __init__(self, spec: Mapping, where: str):
        self.spec = spec
        self.where = where

    def error(self, path: str, expected: str) -> BenchError:
        return BenchError(f"{self.where}: {path}: {expected}")

    def get(self, path: str, default: Any = None) -> Any:
        return _lookup(self.spec, path, default)

    def number(self, path: str, default: float | None = None) -> float:
        value = self.get(path, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, f"expected a number, got {value!r}")
        return float(value)

    def integer(self, path: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.get(path, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(path, f"expected a whole number >= {minimum}, got {value!r}")
        return value

    def decay(self, path: str) -> Decay | None:
        block = self.get(path)
        if block is None:
            return None
        if not isinstance(block, Mapping):
            raise self.error(path, f"expected a schedule mapping, got {block!r}")
        name = block.get("name", "no_decay")
        if name not in DECAYS:
            raise self.error(f"{path}.name", f"expected one of {', '.join(DECAYS)}, got {name!r}")
        start = self.number(f"{path}.start_val")
        return Decay(
            name=name,
            start_val=start,
            end_val=self.number(f"{path}.end_val", start),
            start_step=self.number(f"{path}.start_step", 0),
            end_step=self.number(f"{path}.end_step", 0),
        )


def _scheduled(decay: Decay, max_frame: int) -> float | FrameSchedule:
    """A constant where the schedule is constant, else an SB3 schedule over the run's frames."""
    if decay.name == "no_decay" or decay.start_val == decay.end_val:
        return decay.start_val
    return FrameSchedule(decay, max_frame)


def _hidden_layers(reader: _SpecReader) -> tuple[list[int], str | None]:
    """Hidden layer sizes and activation: MLPNet ``hid_layers`` or a TorchArcNet MLP ``arc``."""
    net = reader.get("agent.net", {})
    activation = net.get("hid_layers_activation")
    arc = net.get("arc")
    if arc is None:
        layers = net.get("hid_layers", [64, 64])
        if not isinstance(layers, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in layers
        ):
            raise reader.error("agent.net.hid_layers", f"expected a list of sizes, got {layers!r}")
        return list(layers), activation
    modules = arc.get("modules") if isinstance(arc, Mapping) else None
    bodies = [m.get("Sequential") for m in (modules or {}).values() if isinstance(m, Mapping)]
    if not bodies or not isinstance(bodies[0], list):
        raise reader.error("agent.net.arc", "expected modules with a Sequential list of layers")
    sizes: list[int] = []
    arc_activation = None
    for layer in bodies[0]:
        if isinstance(layer, Mapping):
            kind, args = next(iter(layer.items()))
        else:
            kind, args = layer, None
        if kind in _LINEAR_LAYERS:
            sizes.append(int((args or {}).get("out_features", 0)))
        elif str(kind).lower() in _ACTIVATIONS:
            arc_activation = arc_activation or kind
        else:
            raise reader.error(
                "agent.net.arc",
                f"layer {kind} is not supported by the embedded runner (MLP arcs of LazyLinear "
                "and activations only); use runner: slm-lab",
            )
    if not sizes or min(sizes) <= 0:
        raise reader.error("agent.net.arc", "expected LazyLinear layers with out_features")
    return sizes, arc_activation or activation


def _activation(name: str | None, reader: _SpecReader) -> str | None:
    if name is None:
        return None
    canonical = _ACTIVATIONS.get(str(name).lower())
    if canonical is None:
        raise reader.error(
            "agent.net.hid_layers_activation",
            f"expected one of {', '.join(_ACTIVATIONS)}, got {name!r}",
        )
    return canonical


def _optimizer(reader: _SpecReader) -> tuple[str, float, str]:
    """(torch.optim class name, learning rate, the spec path it came from)."""
    for path in ("agent.net.optim_spec", "agent.net.actor_optim_spec"):
        block = reader.get(path)
        if isinstance(block, Mapping):
            name = str(block.get("name", "Adam")).removeprefix("Global")
            if name not in _OPTIMIZERS:
                raise reader.error(
                    f"{path}.name", f"expected one of {', '.join(_OPTIMIZERS)}, got {name!r}"
                )
            return name, reader.number(f"{path}.lr"), path
    raise reader.error("agent.net.optim_spec", "missing (expected name and lr)")


def _learning_rate(reader: _SpecReader, lr: float, max_frame: int, notes: list[str]):
    scheduler = reader.get("agent.net.lr_scheduler_spec")
    if not scheduler:
        return lr
    name = scheduler.get("name")
    if name == "LinearToZero":
        frames = reader.number("agent.net.lr_scheduler_spec.frame", max_frame)
        return FrameSchedule(Decay("linear_decay", lr, 0.0, 0, frames), max_frame)
    notes.append(f"agent.net.lr_scheduler_spec {name} is not mapped: constant learning rate")
    return lr


def _train_freq(reader: _SpecReader, num_envs: int) -> int:
    """SLM-Lab trains off-policy when ``frame % training_frequency < num_envs``: every
    max(1, training_frequency / num_envs) vector steps, which is SB3's train_freq unit."""
    frequency = reader.integer("agent.algorithm.training_frequency", 1)
    return max(1, round(frequency / num_envs))


def _max_grad_norm(reader: _SpecReader) -> float:
    value = reader.get("agent.net.clip_grad_val")
    return math.inf if value is None else reader.number("agent.net.clip_grad_val")


def _on_policy(
    reader: _SpecReader, algorithm: str, num_envs: int, max_frame: int, notes: list[str]
) -> tuple[dict, FrameSchedule | None, int]:
    """Kwargs for PPO or A2C, the entropy schedule if it decays, optimizer steps per update."""
    hidden, activation = _hidden_layers(reader)
    optim, lr, _ = _optimizer(reader)
    policy_kwargs: dict[str, Any] = {"net_arch": {"pi": hidden, "vf": hidden}}
    if activation := _activation(activation, reader):
        policy_kwargs["activation_fn"] = activation
    kwargs: dict[str, Any] = {
        "gamma": reader.number("agent.algorithm.gamma", 0.99),
        # SLM-Lab's PPO always uses GAE; its ActorCritic without lam uses n-step returns
        "gae_lambda": reader.number("agent.algorithm.lam", 0.95 if algorithm == "PPO" else 1.0),
        "vf_coef": reader.number("agent.algorithm.val_loss_coef", 1.0),
        "max_grad_norm": _max_grad_norm(reader),
        "learning_rate": _learning_rate(reader, lr, max_frame, notes),
        "policy_kwargs": policy_kwargs,
    }
    entropy = reader.decay("agent.algorithm.entropy_coef_spec") or Decay("no_decay", 0.0, 0.0)
    kwargs["ent_coef"] = entropy.start_val
    ent_schedule = None if entropy.name == "no_decay" else FrameSchedule(entropy, max_frame)
    if reader.get("agent.net.shared"):
        notes.append("agent.net.shared: SB3 2.x has no shared hidden layers; separate ones used")
    if reader.get("agent.algorithm.normalize_v_targets"):
        notes.append("agent.algorithm.normalize_v_targets is not available in SB3: not applied")
    if algorithm == "A2C":
        kwargs["n_steps"] = reader.integer("agent.algorithm.training_frequency")
        kwargs["use_rms_prop"] = optim == "RMSprop"
        if optim != "RMSprop":
            policy_kwargs["optimizer_class"] = optim
        if reader.get("agent.algorithm.lam") is None:
            notes.append("agent.algorithm.lam unset: n-step returns (gae_lambda 1.0)")
        return kwargs, ent_schedule, 1
    # PPO: SLM-Lab rounds time_horizon and minibatch_size up to multiples of num_envs, and caps
    # the minibatch at the batch (time_horizon * num_envs transitions per update).
    horizon = reader.integer("agent.algorithm.time_horizon")
    minibatch = reader.integer("agent.algorithm.minibatch_size", 4)
    if horizon % num_envs or minibatch % num_envs:
        horizon = math.ceil(horizon / num_envs) * num_envs
        minibatch = math.ceil(minibatch / num_envs) * num_envs
    batch = min(minibatch, horizon * num_envs)
    clip = reader.decay("agent.algorithm.clip_eps_spec") or Decay("no_decay", 0.2, 0.2)
    kwargs.update(
        n_steps=horizon,
        batch_size=batch,
        n_epochs=reader.integer("agent.algorithm.training_epoch", 4),
        clip_range=_scheduled(clip, max_frame),
    )
    if reader.get("agent.algorithm.clip_val_loss") or reader.get("agent.algorithm.clip_vloss"):
        kwargs["clip_range_vf"] = kwargs["clip_range"]
    policy_kwargs["optimizer_class"] = optim
    if reader.get("agent.net.critic_optim_spec"):
        notes.append("agent.net.critic_optim_spec: SB3 uses one optimizer; actor lr used for both")
    return kwargs, ent_schedule, math.ceil(horizon * num_envs / batch)


def _replay(reader: _SpecReader, num_envs: int) -> dict:
    return {
        "gamma": reader.number("agent.algorithm.gamma", 0.99),
        "batch_size": reader.integer("agent.memory.batch_size", 32),
        "buffer_size": reader.integer("agent.memory.max_size", 100_000),
        "learning_starts": reader.integer("agent.algorithm.training_start_step", 0, minimum=0),
        "train_freq": _train_freq(reader, num_envs),
    }


def _dqn(
    reader: _SpecReader, spec_algorithm: str, num_envs: int, max_frame: int, notes: list[str]
) -> tuple[dict, FrameSchedule]:
    """Kwargs for SB3's DQN and the exploration schedule.

    SB3's DQN: epsilon-greedy exploration, uniform replay, a target network refreshed by copy
    (tau 1) or Polyak averaging, Huber loss, no double-Q target. SLM-Lab's Boltzmann policy,
    PrioritizedReplay, DoubleDQN's target and an MSE loss are not available: the nearest
    setting is used and listed in the plan's notes.
    """
    hidden, activation = _hidden_layers(reader)
    optim, lr, _ = _optimizer(reader)
    policy_kwargs: dict[str, Any] = {"net_arch": hidden, "optimizer_class": optim}
    if activation := _activation(activation, reader):
        policy_kwargs["activation_fn"] = activation
    kwargs = _replay(reader, num_envs)
    iters = reader.integer("agent.algorithm.training_iter", 1)
    batch_iters = reader.integer("agent.algorithm.training_batch_iter", 1)
    kwargs.update(
        gradient_steps=iters * batch_iters,
        max_grad_norm=_max_grad_norm(reader),
        learning_rate=_learning_rate(reader, lr, max_frame, notes),
        policy_kwargs=policy_kwargs,
    )
    if spec_algorithm == "VanillaDQN":  # no target network: refresh it every vector step
        kwargs.update(target_update_interval=1, tau=1.0)
    elif reader.get("agent.net.update_type", "replace") == "polyak":
        kwargs.update(target_update_interval=1, tau=reader.number("agent.net.polyak_coef"))
    else:  # SLM-Lab's update_frequency and SB3's target_update_interval both count frames
        kwargs.update(target_update_interval=reader.integer("agent.net.update_frequency", 1))
    if spec_algorithm == "DoubleDQN":
        notes.append("DoubleDQN: SB3's DQN has no double-Q target; trained as DQN")
    if reader.get("agent.memory.name") == "PrioritizedReplay":
        notes.append("PrioritizedReplay is not available in SB3's DQN: uniform replay used")
    if reader.get("agent.net.loss_spec.name", "SmoothL1Loss") != "SmoothL1Loss":
        notes.append("agent.net.loss_spec: SB3's DQN always uses the Huber (SmoothL1) loss")
    explore = reader.decay("agent.algorithm.explore_var_spec")
    if explore is None:
        raise reader.error("agent.algorithm.explore_var_spec", "missing (DQN needs exploration)")
    if reader.get("agent.algorithm.action_policy") == "boltzmann":
        notes.append(
            "action_policy boltzmann is not available in SB3: epsilon-greedy from 1.0 to 0.05 "
            "over the same explore_var_spec steps"
        )
        explore = Decay(explore.name, 1.0, 0.05, explore.start_step, explore.end_step)
    return kwargs, FrameSchedule(explore, max_frame)


def _sac(reader: _SpecReader, num_envs: int, max_frame: int, notes: list[str]) -> dict:
    """Kwargs for SB3's SAC (automatic entropy tuning, as SLM-Lab's SAC)."""
    hidden, activation = _hidden_layers(reader)
    optim, lr, _ = _optimizer(reader)
    policy_kwargs: dict[str, Any] = {
        "net_arch": {"pi": hidden, "qf": hidden},
        "optimizer_class": optim,
    }
    if activation := _activation(activation, reader):
        policy_kwargs["activation_fn"] = activation
    kwargs = _replay(reader, num_envs)
    kwargs.update(
        gradient_steps=reader.integer("agent.algorithm.training_iter", 1),
        tau=reader.number("agent.net.polyak_coef", 0.005),
        ent_coef="auto",
        learning_rate=_learning_rate(reader, lr, max_frame, notes),
        policy_kwargs=policy_kwargs,
    )
    if reader.get("agent.net.clip_grad_val") is not None:
        notes.append("agent.net.clip_grad_val: SB3's SAC does not clip gradients")
    return kwargs


def _probe_env(env_id: str, env_kwargs: dict, reader: _SpecReader):
    import gymnasium as gym

    try:
        env = gym.make(env_id, **env_kwargs)
    except Exception as error:  # gymnasium raises many types for unknown or uninstalled envs
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise reader.error("env.name", f"cannot make {env_id!r}: {message}") from None
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces


def plan_training(
    spec: Mapping, spec_file: str = "spec", spec_name: str | None = None
) -> TrainingPlan:
    """Map an SLM-Lab spec body onto SB3: algorithm, kwargs, env and run settings.

    Raises BenchError for an algorithm, action space, network or schedule the embedded runner
    cannot train; close-but-not-exact mappings are listed in ``notes``.
    """
    where = f"{spec_file}: {spec_name or spec.get('name', '?')}"
    reader = _SpecReader(spec, where)
    spec_algorithm = str(reader.get("agent.algorithm.name", ""))
    algorithm = SB3_ALGORITHMS.get(spec_algorithm)
    if algorithm is None:
        raise reader.error(
            "agent.algorithm.name",
            f"{spec_algorithm or '(missing)'} is not supported by the embedded runner "
            f"(supported: {', '.join(SB3_ALGORITHMS)}); use runner: slm-lab",
        )
    env_id = reader.get("env.name")
    if not isinstance(env_id, str) or not env_id:
        raise reader.error("env.name", f"expected a Gymnasium env id, got {env_id!r}")
    num_envs = reader.integer("env.num_envs", 1)
    max_frame = reader.integer("env.max_frame")
    max_session = reader.integer("meta.max_session")
    log_frequency = reader.integer("meta.log_frequency")
    env_kwargs = {k: v for k, v in reader.get("env").items() if k not in _SLM_ENV_KEYS}
    if reader.get("env.max_t") is not None:
        env_kwargs["max_episode_steps"] = reader.integer("env.max_t")
    _, action_space = _probe_env(env_id, env_kwargs, reader)
    continuous = type(action_space).__name__ == "Box"
    if algorithm == "SAC" and not continuous:
        raise reader.error(
            "agent.algorithm.name",
            f"SoftActorCritic with a discrete action space ({env_id}) is not supported by the "
            "embedded runner (SB3's SAC needs continuous actions); use runner: slm-lab",
        )
    if algorithm == "DQN" and continuous:
        raise reader.error(
            "agent.algorithm.name",
            f"{spec_algorithm} needs a discrete action space; {env_id} has continuous actions",
        )
    notes: list[str] = []
    ent_schedule = exploration = None
    opt_steps_per_update = 1
    if algorithm in ("PPO", "A2C"):
        kwargs, ent_schedule, opt_steps_per_update = _on_policy(
            reader, algorithm, num_envs, max_frame, notes
        )
    elif algorithm == "DQN":
        kwargs, exploration = _dqn(reader, spec_algorithm, num_envs, max_frame, notes)
    else:
        kwargs = _sac(reader, num_envs, max_frame, notes)
    normalize = None
    if reader.get("env.normalize_obs") or reader.get("env.normalize_reward"):
        normalize = {
            "norm_obs": bool(reader.get("env.normalize_obs", False)),
            "norm_reward": bool(reader.get("env.normalize_reward", False)),
            "gamma": kwargs["gamma"],
            "clip_obs": reader.number("env.clip_obs", 10.0),
            "clip_reward": reader.number("env.clip_reward", 10.0),
        }
    rigorous_eval = bool(reader.get("meta.rigorous_eval", 0))
    if rigorous_eval:
        notes.append("meta.rigorous_eval: no separate eval episodes; the eval df is the train df")
    plan = TrainingPlan(
        algorithm=algorithm,
        spec_algorithm=spec_algorithm,
        env_id=env_id,
        num_envs=num_envs,
        max_frame=max_frame,
        max_session=max_session,
        log_frequency=log_frequency,
        kwargs=kwargs,
        env_kwargs=env_kwargs,
        normalize=normalize,
        ent_coef_schedule=ent_schedule,
        exploration_schedule=exploration,
        opt_steps_per_update=opt_steps_per_update,
        rigorous_eval=rigorous_eval,
        notes=tuple(notes),
    )
    checkpoints = len(plan.checkpoint_frames(limit=3))
    if checkpoints <= 2:  # SLM-Lab's analysis asserts more than 2 datapoints
        raise reader.error(
            "meta.log_frequency",
            f"{log_frequency} gives {checkpoints} checkpoints over env.max_frame {max_frame}; "
            "SLM-Lab's analysis needs more than 2",
        )
    return plan


# ---------------------------------------------------------------------------------------------
# Training one session


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
    if plan.exploration_schedule is not None:  # SB3 reads it every step in DQN._on_step
        model.exploration_schedule = plan.exploration_schedule
    # SB3's default logger makes an (empty) /tmp/SB3-{timestamp} folder per learn(); ours keeps
    # the train/* values in memory only
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _format_items(row: Mapping[str, float]) -> list[str]:
    """SLM-Lab's util.format_metrics: frame %.2e, returns %.2f, other floats 4 significant."""
    items = []
    for key, value in row.items():
        value = float(value)
        if math.isnan(value):
            items.append(f"{key}:nan")
        elif key == "frame":
            items.append(f"{key}:{value:.2e}")
        elif key in ("total_reward", "total_reward_ma"):
            items.append(f"{key}:{value:.2f}")
        elif not value.is_integer():
            items.append(f"{key}:{value:.4g}")
        else:
            items.append(f"{key}:{value:g}")
    return items


def summary_message(prefix: str, row: Mapping[str, float]) -> str:
    """SLM-Lab's checkpoint summary: ``{prefix} [train]`` then the row, four items a line."""
    items = _format_items(row)
    width = max(len(item) for item in items)
    lines = [f"{prefix} [train]"]
    for i in range(0, len(items), 4):
        chunk = items[i : i + 4]
        lines.append(
            "  ".join(f"{it:<{width}}" if j < len(chunk) - 1 else it for j, it in enumerate(chunk))
        )
    return "\n".join(lines)


# A log record travelling from a session to the console: (session, when, level, module, function,
# message, pid); session is None for trial-level lines.
LogRecord = tuple[int | None, datetime, str, str, str, str, int]
Reporter = Callable[[LogRecord], None]


def log_record(
    session: int | None, module: str, function: str, message: str, level: str = "INFO"
) -> LogRecord:
    """A record stamped now, from this process."""
    return (session, datetime.now(), level, module, function, message, os.getpid())


def _session_callback(plan: TrainingPlan, session: int, prefix: str, report: Reporter):
    """An SB3 callback recording SLM-Lab checkpoints; O(1) per step, O(window) per checkpoint."""
    from stable_baselines3.common.callbacks import BaseCallback

    class SessionRecorder(BaseCallback):
        def __init__(self) -> None:
            super().__init__(verbose=0)
            self.rows: list[list[float]] = []
            self.every = max(plan.max_frame * PROGRESS_FRACTION, 1)
            self.next_report = self.every

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
            lrs = [opt.param_groups[0]["lr"] for opt in self.optimizers]
            episodes = sum(len(r) for r in self.training_env.get_attr("episode_returns"))
            total_reward = self._total_reward()
            recent = [row[0] for row in self.rows[-(RETURN_WINDOW - 1) :]] + [total_reward]
            row = [
                total_reward,
                float(np.mean(recent)),
                loss,
                frame / wall_t if wall_t else 0.0,
                frame,
                wall_t,
                frame // plan.num_envs,
                episodes,
                self.model._n_updates * plan.opt_steps_per_update,
                float(np.mean(lrs)) if lrs else math.nan,
                *extras,
            ]
            self.rows.append([float(v) for v in row])
            if frame >= self.next_report or frame >= plan.max_frame:
                while self.next_report <= frame:
                    self.next_report += self.every
                message = summary_message(
                    prefix, dict(zip(plan.columns, self.rows[-1], strict=True))
                )
                report(log_record(session, "__init__", "log_summary", message))

    return SessionRecorder()


def train_session(
    plan: TrainingPlan, session: int, seed: int, prefix: str, model_path: Path, report: Reporter
) -> list[list[float]]:
    """Train one session; return its session_df rows (columns ``plan.columns``).

    Saves the SB3 model (a zip archive) at ``model_path``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model(plan, seed)
        recorder = _session_callback(plan, session, prefix, report)
        # log_interval=None: SB3 never dumps (and clears) the train/* values the recorder reads
        model.learn(total_timesteps=plan.max_frame, callback=recorder, log_interval=None)
        model.save(model_path)
        if plan.normalize:
            model.get_env().save(str(model_path).replace("_model.pt", "_vecnormalize.pkl"))
        model.get_env().close()
    finally:
        torch.set_num_threads(threads)
    report(log_record(session, "control", "close", f"Session {session} done"))
    return recorder.rows


# Worker-process side of the session pool: the queue that carries log records to the parent.
_worker_queue: Any = None


def _init_worker(log_queue: Any) -> None:
    global _worker_queue
    _worker_queue = log_queue


def _train_session_in_worker(
    plan: TrainingPlan, session: int, seed: int, prefix: str, model_path: Path
) -> list[list[float]]:
    return train_session(plan, session, seed, prefix, model_path, _worker_queue.put)


# ---------------------------------------------------------------------------------------------
# The trial


class _Console:
    """Prints console lines to the stream (coloured, as loguru does) and keeps the plain lines
    per log file: the trial log and one log per session."""

    def __init__(self, stream: TextIO, n_sessions: int):
        self.stream = stream
        self.trial: list[str] = []
        self.sessions: list[list[str]] = [[] for _ in range(n_sessions)]
        self.done: set[int] = set()

    def __call__(self, record: LogRecord, keep: bool = True, show: bool = True) -> None:
        session, when, level, module, function, message, pid = record
        if show:
            self.stream.write(console_line(level, module, function, message, when, pid) + "\n")
            self.stream.flush()
        if keep:
            plain = console_line(level, module, function, message, when, pid, color=False)
            (self.trial if session is None else self.sessions[session]).append(plain)
        if session is not None and message == f"Session {session} done":
            self.done.add(session)

    def log(
        self,
        message: str,
        module: str = "control",
        function: str = "run",
        level: str = "INFO",
        keep: bool = True,
        show: bool = True,
    ) -> None:
        self(log_record(None, module, function, message, level), keep=keep, show=show)


def _trial_spec(spec: Mapping, run_name: str, folder: str, when: datetime) -> dict:
    """The spec as SLM-Lab saves it for a train trial: ``name`` set, ``meta`` extended."""
    trial = copy.deepcopy(dict(spec))
    trial["name"] = run_name
    meta = trial.setdefault("meta", {})
    predir = f"data/{folder}"
    prepath = f"{predir}/{run_name}_t0"
    meta.update(
        rigorous_eval=meta.get("rigorous_eval", 0),
        experiment=0,
        trial=0,
        session=-1,
        cuda_offset=0,
        resume=False,
        experiment_ts=when.strftime(FOLDER_TS_FORMAT),
        prepath=prepath,
        git_sha=None,
        random_seed=None,
        predir=predir,
        **{
            f"{part}_prepath": f"{predir}/{part}/{run_name}_t0"
            for part in ("graph", "info", "log", "model")
        },
    )
    return trial


def _reserve_folder(data_root: Path, run_name: str) -> tuple[str, datetime, Path]:
    """A run folder name nobody holds under ``data_root`` (a later second if needed).

    The name is claimed by creating a hidden ``.{folder}.reserved`` file exclusively, so two runs
    of the same spec started in the same second do not build the same folder.
    """
    data_root.mkdir(parents=True, exist_ok=True)
    when = datetime.now().replace(microsecond=0)
    while True:
        folder = folder_name(run_name, when)
        reservation = data_root / f".{folder}.reserved"
        if not (data_root / folder).exists():
            try:
                os.close(os.open(reservation, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return folder, when, reservation
            except FileExistsError:
                pass
        when += timedelta(seconds=1)


def _run_sessions(
    plan: TrainingPlan,
    seeds: list[int],
    prefixes: list[str],
    model_paths: list[Path],
    console: _Console,
    max_workers: int,
    where: str,
) -> list[list[list[float]]]:
    n = len(seeds)
    results: dict[int, list[list[float]]] = {}
    if max_workers <= 1:
        for s in range(n):
            try:
                results[s] = train_session(plan, s, seeds[s], prefixes[s], model_paths[s], console)
            except Exception as error:
                raise _session_error(where, s, error) from error
        return [results[s] for s in range(n)]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
    log_queue = ctx.Queue()
    executor = ProcessPoolExecutor(
        max_workers=min(max_workers, n),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(log_queue,),
    )
    pending: dict[Future, int] = {}
    try:
        for s in range(n):
            args = (plan, s, seeds[s], prefixes[s], model_paths[s])
            pending[executor.submit(_train_session_in_worker, *args)] = s
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(log_queue, console)
            for future in done:
                s = pending.pop(future)
                error = future.exception()
                if error is not None:
                    raise _session_error(where, s, error)
                results[s] = future.result()
        deadline = time.monotonic() + 10  # the last records may still be in the queue's pipe
        while len(console.done) < n and time.monotonic() < deadline:
            _drain(log_queue, console, block=True)
    except BaseException:
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        log_queue.close()
    return [results[s] for s in range(n)]


def _drain(log_queue: Any, console: _Console, block: bool = False) -> None:
    while True:
        try:
            record = log_queue.get(timeout=0.2) if block else log_queue.get_nowait()
        except queue.Empty:
            return
        console(record)
        block = False


def _session_error(where: str, session: int, error: BaseException) -> BenchError:
    detail = str(error).strip().splitlines()
    return BenchError(
        f"{where}: session {session} failed: {type(error).__name__}"
        + (f": {detail[-1]}" if detail else "")
    )


def run_trial(
    spec: dict,
    spec_file: str,
    spec_name: str,
    run_name: str,
    data_root: Path,
    mode: str = "train",
    max_workers: int | None = None,
    stream: TextIO | None = None,
    seed: int | None = None,
) -> Path:
    """Train the spec's trial and write its SLM-Lab run folder under ``data_root``.

    Trains ``meta.max_session`` sessions (seeds as SLM-Lab derives them: ``1000 * session +``
    a base, the current time unless ``seed`` is given), up to ``max_workers`` at once in
    separate single-threaded processes (in this process when 1). The folder is built in a temp
    sibling and renamed into place at the end. Returns the folder's path.
    """
    if mode != "train":
        raise BenchError(f"{spec_file}: {spec_name}: mode {mode!r} is not supported (only train)")
    stream = stream or sys.stdout
    where = f"{spec_file}: {spec_name}"
    plan = plan_training(spec, spec_file, spec_name)
    random_baseline = random_return(plan.env_id)
    data_root = Path(data_root)
    folder, when, reservation = _reserve_folder(data_root, run_name)
    try:
        n = plan.max_session
        workers = max(1, min(max_workers or os.cpu_count() or 1, n))
        base_seed = int(time.time()) if seed is None else int(seed)
        seeds = [int(1e3 * s + base_seed) % 2**32 for s in range(n)]
        console = _Console(stream, n)
        console.log(
            running_message(spec_file, spec_name, mode, n, f"data/{folder}/{run_name}"),
            module="main",
            function="run_spec",
        )
        console.log(
            f"Embedded runner: SB3 {plan.algorithm} on {plan.env_id} ({plan.num_envs} envs, "
            f"{plan.max_frame} frames), {n} sessions on {workers} workers, seeds {seeds}",
            module="embedded",
            function="run_trial",
        )
        for note in plan.notes:
            console.log(note, module="embedded", function="plan_training", level="WARNING")
        trial_spec = _trial_spec(spec, run_name, folder, when)
        with staged_dir(data_root / folder) as root:
            layout = RunLayout(root, run_name)
            for directory in (layout.info_dir, layout.log_dir, layout.model_dir, layout.graph_dir):
                directory.mkdir(parents=True, exist_ok=True)
            write_json(layout.spec_json, trial_spec)
            write_json(layout.trial_spec_json, trial_spec)
            prefixes = [f"Trial 0 session {s} {layout.session_prefix(s)}" for s in range(n)]
            model_paths = [
                layout.model_dir / f"{layout.session_prefix(s)}_model.pt" for s in range(n)
            ]
            rows = _run_sessions(plan, seeds, prefixes, model_paths, console, workers, where)
            metrics_list = []
            for s, session_rows in enumerate(rows):
                session_df = pd.DataFrame(session_rows, columns=list(plan.columns))
                metrics = session_metrics(session_df, random_baseline or 0.0)
                metrics_list.append(metrics)
                csv = session_df.to_csv(index=False)
                for df_mode in ("train", "eval"):  # eval is train: no separate eval episodes
                    write_text(layout.session_df_csv(s, df_mode), csv)
                    write_json(layout.session_metrics_json(s, df_mode), metrics)
                    write_json(layout.session_metrics_scalar_json(s, df_mode), metrics["scalar"])
            trial = trial_metrics(metrics_list)
            write_json(layout.trial_metrics_json, trial)
            write_json(layout.trial_metrics_scalar_json, trial["scalar"])
            write_json(layout.root_trial_metrics_scalar_json, trial["scalar"])
            console.log(trial_metrics_message(trial["scalar"]))
            console.log("Trial 0 done", function="close")
            # the Output line: in the trial log now, on the console once the folder is in place
            console.log(output_message(folder), module="main", function="run_spec", show=False)
            write_text(layout.trial_log, "\n".join(console.trial) + "\n")
            for s in range(n):
                write_text(layout.session_log(s), "\n".join(console.sessions[s]) + "\n")
        console.log(output_message(folder), module="main", function="run_spec", keep=False)
    finally:
        reservation.unlink(missing_ok=True)
    return data_root / folder
