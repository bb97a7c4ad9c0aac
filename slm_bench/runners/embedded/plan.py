"""SLM-Lab spec -> Stable-Baselines3: the algorithm, its keyword arguments and the run settings.

Mapping: PPO -> PPO, ActorCritic -> A2C, VanillaDQN/DQN/DoubleDQN -> DQN, SoftActorCritic -> SAC
(continuous actions only). Anything SB3 cannot express is either refused with a BenchError or,
where a close equivalent exists, mapped and listed in ``TrainingPlan.notes`` (printed as WARNING
lines at the start of the run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slm_bench.runners.embedded.dqn import DQNConventions, dqn_conventions
from slm_bench.runners.embedded.net_spec import (
    activation_class,
    hidden_layers,
    learning_rate,
    max_grad_norm,
    optimizer,
)
from slm_bench.runners.embedded.nets import GAINS, INIT_FNS, ActorCriticNets
from slm_bench.runners.embedded.spec_reader import Decay, FrameSchedule, SpecReader, scheduled

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
    nets: ActorCriticNets | None = None  # SLM-Lab's ActorCritic init, optimizers, clipping
    normalize_v_targets: bool = False  # A2C: SLM-Lab's ReturnNormalizer in the value loss
    dqn: DQNConventions | None = None  # SLM-Lab's DQN target, loss, train step, replay
    policy: str = "MlpPolicy"  # SB3 policy: "MlpPolicy" or gaussian.py's "SlmLabGaussianPolicy"
    rescale_actions: bool = False  # a Box action space rescaled to [-1, 1], as SLM-Lab's env
    slm_lab_episode_ends: bool = False  # SLM-Lab's reset step and time limits (autoreset.py)
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


def _train_freq(reader: SpecReader, num_envs: int) -> int:
    """SLM-Lab trains off-policy when ``frame % training_frequency < num_envs``: every
    max(1, training_frequency / num_envs) vector steps, which is SB3's train_freq unit."""
    frequency = reader.integer("agent.algorithm.training_frequency", 1)
    return max(1, round(frequency / num_envs))


def _actor_critic_nets(reader: SpecReader, optim: str, lr: float) -> ActorCriticNets:
    """SLM-Lab's ActorCritic nets: per-net optimizer (torch's defaults plus the spec's keys),
    learning rate and clip, and its weight init (nets.py)."""
    _, _, path = optimizer(reader)
    extra = {k: v for k, v in reader.get(path).items() if k not in ("name", "lr")}
    critic_lr = lr
    if reader.get("agent.net.critic_optim_spec") and not reader.get("agent.net.use_same_optim"):
        critic_lr = reader.number("agent.net.critic_optim_spec.lr")
        name = str(reader.get("agent.net.critic_optim_spec.name", optim)).removeprefix("Global")
        if name != optim:
            raise reader.error(
                "agent.net.critic_optim_spec.name",
                f"expected the actor's optimizer ({optim}) in the embedded runner, got {name!r}",
            )
    if lr == 0 and critic_lr != 0:  # the critic's rate is applied as a multiple of the actor's
        raise reader.error(
            "agent.net.critic_optim_spec.lr",
            "expected 0 with an actor learning rate of 0 in the embedded runner",
        )
    init_fn = reader.get("agent.net.init_fn")
    if init_fn is not None and init_fn not in INIT_FNS:
        raise reader.error("agent.net.init_fn", f"expected one of {', '.join(INIT_FNS)}")
    activation = str(reader.get("agent.net.hid_layers_activation", "relu")).lower()
    if init_fn is not None and activation not in GAINS:
        raise reader.error(
            "agent.net.hid_layers_activation",
            f"expected one of {', '.join(GAINS)} with init_fn {init_fn}, got {activation!r}",
        )
    shared = bool(reader.get("agent.net.shared"))
    clip = reader.get("agent.net.clip_grad_val")
    return ActorCriticNets(
        actor_lr=lr,
        critic_lr=critic_lr,
        separate=not shared,
        clip_grad_val=None if clip is None else reader.number("agent.net.clip_grad_val"),
        init_fn=init_fn,
        activation=activation,
        optimizer_kwargs=extra,
        actor_init_std=reader.get("agent.net.actor_init_std") if shared else None,
        critic_init_std=reader.get("agent.net.critic_init_std") if shared else None,
    )


def _on_policy(
    reader: SpecReader, algorithm: str, num_envs: int, max_frame: int, notes: list[str]
) -> tuple[dict, FrameSchedule | None, int, ActorCriticNets | None]:
    """Kwargs for PPO or A2C, the entropy schedule if it decays, optimizer steps per update,
    and for A2C SLM-Lab's net conventions (nets.py)."""
    hidden, activation = hidden_layers(reader)
    optim, lr, _ = optimizer(reader)
    policy_kwargs: dict[str, Any] = {"net_arch": {"pi": hidden, "vf": hidden}}
    if activation := activation_class(activation, reader):
        policy_kwargs["activation_fn"] = activation
    kwargs: dict[str, Any] = {
        "gamma": reader.number("agent.algorithm.gamma", 0.99),
        # SLM-Lab's PPO always uses GAE; its ActorCritic without lam uses n-step returns
        "gae_lambda": reader.number("agent.algorithm.lam", 0.95 if algorithm == "PPO" else 1.0),
        "vf_coef": reader.number("agent.algorithm.val_loss_coef", 1.0),
        "max_grad_norm": max_grad_norm(reader),
        "learning_rate": learning_rate(reader, lr, max_frame, notes),
        "policy_kwargs": policy_kwargs,
    }
    entropy = reader.decay("agent.algorithm.entropy_coef_spec") or Decay("no_decay", 0.0, 0.0)
    kwargs["ent_coef"] = entropy.start_val
    schedule = scheduled(entropy, max_frame)
    ent_schedule = schedule if isinstance(schedule, FrameSchedule) else None
    if reader.get("agent.net.shared"):
        notes.append("agent.net.shared: SB3 2.x has no shared hidden layers; separate ones used")
    if algorithm == "PPO" and reader.get("agent.algorithm.normalize_v_targets"):
        notes.append("agent.algorithm.normalize_v_targets is not available in SB3: not applied")
    if algorithm == "A2C":
        opt_steps, nets = _a2c(reader, kwargs, optim, lr, notes)
        return kwargs, ent_schedule, opt_steps, nets
    return kwargs, ent_schedule, _ppo(reader, kwargs, optim, num_envs, max_frame, notes), None


def _a2c(
    reader: SpecReader, kwargs: dict[str, Any], optim: str, lr: float, notes: list[str]
) -> tuple[int, ActorCriticNets]:
    """A2C's own kwargs (set in ``kwargs``): optimizer steps per update and SLM-Lab's nets."""
    kwargs["n_steps"] = reader.integer("agent.algorithm.training_frequency")
    # SLM-Lab's policy loss standardises the batch's advantages (Reinforce.calc_policy_loss)
    kwargs["normalize_advantage"] = True
    # clipped per net by the optimizer (nets.py); SB3's joint clip is a no-op
    kwargs["max_grad_norm"] = math.inf
    kwargs["use_rms_prop"] = False
    nets = _actor_critic_nets(reader, optim, lr)
    kwargs["policy_kwargs"].update(
        optimizer_class=optim, optimizer_kwargs=nets.optimizer_kwargs, ortho_init=False
    )
    if reader.get("agent.algorithm.lam") is None:
        notes.append("agent.algorithm.lam unset: n-step returns (gae_lambda 1.0)")
    # SLM-Lab ticks opt_step once per net trained
    return (2 if nets.separate else 1), nets


def _ppo(
    reader: SpecReader,
    kwargs: dict[str, Any],
    optim: str,
    num_envs: int,
    max_frame: int,
    notes: list[str],
) -> int:
    """PPO's own kwargs (set in ``kwargs``); returns optimizer steps per update.

    SLM-Lab rounds time_horizon and minibatch_size up to multiples of num_envs, and caps the
    minibatch at the batch (time_horizon * num_envs transitions per update)."""
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
        clip_range=scheduled(clip, max_frame),
    )
    if reader.get("agent.algorithm.clip_val_loss") or reader.get("agent.algorithm.clip_vloss"):
        kwargs["clip_range_vf"] = kwargs["clip_range"]
    kwargs["policy_kwargs"]["optimizer_class"] = optim
    if reader.get("agent.net.critic_optim_spec"):
        notes.append("agent.net.critic_optim_spec: SB3 uses one optimizer; actor lr used for both")
    return math.ceil(horizon * num_envs / batch)


def _slm_lab_gaussian(reader: SpecReader, action_space: Any, kwargs: dict) -> bool:
    """SLM-Lab's continuous ActorCritic policy (gaussian.py); True when the action space needs
    SLM-Lab's rescaling to [-1, 1] (env/__init__.py ``_needs_action_rescaling``)."""
    import numpy as np

    log_std_init = reader.get("agent.net.log_std_init")
    if log_std_init is not None:
        log_std_init = reader.number("agent.net.log_std_init")
    kwargs["policy_kwargs"]["slm_log_std_init"] = log_std_init
    at_unit = np.allclose(action_space.low, -1.0, atol=1e-6) and np.allclose(
        action_space.high, 1.0, atol=1e-6
    )
    return not at_unit


def _actions(reader: SpecReader, algorithm: str, action_space: Any, kwargs: dict) -> dict:
    """The TrainingPlan fields of SLM-Lab's ActorCritic: its episode ends (autoreset.py) and,
    on a continuous action space, its Gaussian policy."""
    if algorithm != "A2C":
        return {}
    if type(action_space).__name__ != "Box":
        return {"slm_lab_episode_ends": True}
    rescale = _slm_lab_gaussian(reader, action_space, kwargs)
    return {
        "policy": "SlmLabGaussianPolicy",
        "rescale_actions": rescale,
        "slm_lab_episode_ends": True,
    }


def _replay(reader: SpecReader, num_envs: int) -> dict:
    return {
        "gamma": reader.number("agent.algorithm.gamma", 0.99),
        "batch_size": reader.integer("agent.memory.batch_size", 32),
        "buffer_size": reader.integer("agent.memory.max_size", 100_000),
        "learning_starts": reader.integer("agent.algorithm.training_start_step", 0, minimum=0),
        "train_freq": _train_freq(reader, num_envs),
    }


def _dqn(
    reader: SpecReader, spec_algorithm: str, num_envs: int, max_frame: int, notes: list[str]
) -> tuple[dict, FrameSchedule, DQNConventions]:
    """Kwargs for SB3's DQN, the exploration schedule (epsilon, or Boltzmann's tau) and SLM-Lab's
    DQN conventions (dqn.py: target, loss, train step, lr schedule, replay)."""
    hidden, activation = hidden_layers(reader)
    optim, lr, _ = optimizer(reader)
    policy_kwargs: dict[str, Any] = {"net_arch": hidden, "optimizer_class": optim}
    if activation := activation_class(activation, reader):
        policy_kwargs["activation_fn"] = activation
    kwargs = _replay(reader, num_envs)
    # SLM-Lab's default training_start_step is the batch size
    kwargs["learning_starts"] = reader.integer(
        "agent.algorithm.training_start_step", kwargs["batch_size"], minimum=0
    )
    conventions = dqn_conventions(reader, spec_algorithm, num_envs, notes)
    kwargs.update(
        gradient_steps=conventions.gradient_steps,
        max_grad_norm=max_grad_norm(reader),
        learning_rate=lr,  # its schedule is SLM-Lab's, per train step (dqn_model.py)
        policy_kwargs=policy_kwargs,
    )
    if spec_algorithm == "VanillaDQN":  # no target network: the trained net's own max
        kwargs.update(target_update_interval=1, tau=1.0)
    elif reader.get("agent.net.update_type", "replace") == "polyak":
        kwargs.update(target_update_interval=1, tau=reader.number("agent.net.polyak_coef"))
    else:  # SLM-Lab's update_frequency and SB3's target_update_interval both count frames
        kwargs.update(target_update_interval=reader.integer("agent.net.update_frequency", 1))
    if reader.get("agent.memory.name") == "PrioritizedReplay":
        notes.append("PrioritizedReplay is not available in SB3's DQN: uniform replay used")
    explore = reader.decay("agent.algorithm.explore_var_spec")
    if explore is None:
        raise reader.error("agent.algorithm.explore_var_spec", "missing (DQN needs exploration)")
    return kwargs, FrameSchedule(explore, max_frame), conventions


def _sac(reader: SpecReader, num_envs: int, max_frame: int, notes: list[str]) -> dict:
    """Kwargs for SB3's SAC (automatic entropy tuning, as SLM-Lab's SAC)."""
    hidden, activation = hidden_layers(reader)
    optim, lr, _ = optimizer(reader)
    policy_kwargs: dict[str, Any] = {
        "net_arch": {"pi": hidden, "qf": hidden},
        "optimizer_class": optim,
    }
    if activation := activation_class(activation, reader):
        policy_kwargs["activation_fn"] = activation
    kwargs = _replay(reader, num_envs)
    kwargs.update(
        gradient_steps=reader.integer("agent.algorithm.training_iter", 1),
        tau=reader.number("agent.net.polyak_coef", 0.005),
        ent_coef="auto",
        learning_rate=learning_rate(reader, lr, max_frame, notes),
        policy_kwargs=policy_kwargs,
    )
    if reader.get("agent.net.clip_grad_val") is not None:
        notes.append("agent.net.clip_grad_val: SB3's SAC does not clip gradients")
    return kwargs


def _probe_env(env_id: str, env_kwargs: dict, reader: SpecReader):
    import gymnasium as gym

    try:
        env = gym.make(env_id, **env_kwargs)
    except Exception as error:  # gymnasium raises many types for unknown or uninstalled envs
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise reader.error("env.name", f"cannot make {env_id!r}: {message}") from None
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces


def _algorithm(reader: SpecReader) -> tuple[str, str]:
    """(SLM-Lab's algorithm name, the SB3 class name), or a BenchError naming the field."""
    spec_algorithm = str(reader.get("agent.algorithm.name", ""))
    algorithm = SB3_ALGORITHMS.get(spec_algorithm)
    if algorithm is None:
        raise reader.error(
            "agent.algorithm.name",
            f"{spec_algorithm or '(missing)'} is not supported by the embedded runner "
            f"(supported: {', '.join(SB3_ALGORITHMS)}); use runner: slm-lab",
        )
    return spec_algorithm, algorithm


def _env_kwargs(reader: SpecReader) -> dict[str, Any]:
    """gym.make's kwargs: the env block's keys that do not configure SLM-Lab itself."""
    env_kwargs = {k: v for k, v in reader.get("env").items() if k not in _SLM_ENV_KEYS}
    if reader.get("env.max_t") is not None:
        env_kwargs["max_episode_steps"] = reader.integer("env.max_t")
    return env_kwargs


def _check_action_space(
    reader: SpecReader, spec_algorithm: str, algorithm: str, env_id: str, env_kwargs: dict
) -> Any:
    """Make the env once: SAC needs continuous actions, DQN discrete ones; its action space."""
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
    return action_space


def _algorithm_fields(
    reader: SpecReader,
    spec_algorithm: str,
    algorithm: str,
    num_envs: int,
    max_frame: int,
    notes: list[str],
) -> dict[str, Any]:
    """The TrainingPlan fields the algorithm sets: kwargs, schedules, opt steps, nets."""
    if algorithm in ("PPO", "A2C"):
        kwargs, ent_schedule, opt_steps, nets = _on_policy(
            reader, algorithm, num_envs, max_frame, notes
        )
        return {
            "kwargs": kwargs,
            "ent_coef_schedule": ent_schedule,
            "opt_steps_per_update": opt_steps,
            "nets": nets,
            "normalize_v_targets": algorithm == "A2C"
            and bool(reader.get("agent.algorithm.normalize_v_targets", False)),
        }
    if algorithm == "DQN":
        kwargs, exploration, dqn = _dqn(reader, spec_algorithm, num_envs, max_frame, notes)
        return {"kwargs": kwargs, "exploration_schedule": exploration, "dqn": dqn}
    return {"kwargs": _sac(reader, num_envs, max_frame, notes)}


def _normalize(reader: SpecReader, gamma: float) -> dict[str, Any] | None:
    """VecNormalize's kwargs when the spec normalises observations or rewards."""
    if not (reader.get("env.normalize_obs") or reader.get("env.normalize_reward")):
        return None
    return {
        "norm_obs": bool(reader.get("env.normalize_obs", False)),
        "norm_reward": bool(reader.get("env.normalize_reward", False)),
        "gamma": gamma,
        "clip_obs": reader.number("env.clip_obs", 10.0),
        "clip_reward": reader.number("env.clip_reward", 10.0),
    }


def plan_training(
    spec: Mapping, spec_file: str = "spec", spec_name: str | None = None
) -> TrainingPlan:
    """Map an SLM-Lab spec body onto SB3: algorithm, kwargs, env and run settings.

    Raises BenchError for an algorithm, action space, network or schedule the embedded runner
    cannot train; close-but-not-exact mappings are listed in ``notes``.
    """
    reader = SpecReader(spec, f"{spec_file}: {spec_name or spec.get('name', '?')}")
    spec_algorithm, algorithm = _algorithm(reader)
    env_id = reader.get("env.name")
    if not isinstance(env_id, str) or not env_id:
        raise reader.error("env.name", f"expected a Gymnasium env id, got {env_id!r}")
    num_envs = reader.integer("env.num_envs", 1)
    max_frame = reader.integer("env.max_frame")
    max_session = reader.integer("meta.max_session")
    log_frequency = reader.integer("meta.log_frequency")
    env_kwargs = _env_kwargs(reader)
    action_space = _check_action_space(reader, spec_algorithm, algorithm, env_id, env_kwargs)
    notes: list[str] = []
    fields = _algorithm_fields(reader, spec_algorithm, algorithm, num_envs, max_frame, notes)
    fields.update(_actions(reader, algorithm, action_space, fields["kwargs"]))
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
        env_kwargs=env_kwargs,
        normalize=_normalize(reader, fields["kwargs"]["gamma"]),
        rigorous_eval=rigorous_eval,
        notes=tuple(notes),
        **fields,
    )
    checkpoints = len(plan.checkpoint_frames(limit=3))
    if checkpoints <= 2:  # SLM-Lab's analysis asserts more than 2 datapoints
        raise reader.error(
            "meta.log_frequency",
            f"{log_frequency} gives {checkpoints} checkpoints over env.max_frame {max_frame}; "
            "SLM-Lab's analysis needs more than 2",
        )
    return plan
