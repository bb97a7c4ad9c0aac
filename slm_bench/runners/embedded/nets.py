"""SLM-Lab's ActorCritic networks on an SB3 policy: weight init, optimizers and gradient clipping.

SLM-Lab's ActorCritic (``agent/algorithm/actor_critic.py``, ``agent/net/``) with ``shared: false``
trains two nets: the actor on the policy loss, the critic on the value loss, each with its own
optimizer (``actor_optim_spec`` / ``critic_optim_spec``, or one spec with ``use_same_optim``) and
each clipped on its own (``clip_grad_val``, ``clip_grad_norm_`` over that net's parameters). Its
layers are initialised by ``init_fn`` with the gain of ``hid_layers_activation`` (output layers
too; ``actor_init_std``/``critic_init_std`` re-initialise the heads of a shared net only), biases
0. Its optimizers take torch's defaults (Adam's eps 1e-8).

SB3's A2C has one optimizer over both nets (Adam's eps set to 1e-5), clips the norm of all
gradients together, and initialises hidden layers with gain sqrt(2) and the heads with 0.01 and
1. With a critic whose value loss is hundreds of times the policy loss (returns of -100 to -500
on Acrobot), one joint clip scales the actor's gradient down with the critic's.

``apply_nets`` gives a built SB3 policy SLM-Lab's conventions: its layers re-initialised, one
optimizer whose two parameter groups (actor, critic) carry their own learning rate and clip
(an Adam per group, as Adam keeps per-parameter state), and the learning-rate schedule scaling
each group's rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

# torch.nn.init.calculate_gain for SLM-Lab's hid_layers_activation names (lower-cased).
GAINS = {
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3,
    "relu": math.sqrt(2.0),
    "leakyrelu": math.sqrt(2.0 / (1 + 0.01**2)),
    "selu": 3.0 / 4,
}
INIT_FNS = (
    "orthogonal_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
)


@dataclass(frozen=True)
class ActorCriticNets:
    """How SLM-Lab builds and steps an ActorCritic's nets (see the module docstring)."""

    actor_lr: float
    critic_lr: float
    separate: bool  # net.shared false: two nets, two optimizers, two clips
    clip_grad_val: float | None
    init_fn: str | None  # torch.nn.init function name; None: torch's default init
    activation: str  # hid_layers_activation, lower-cased: the init gain
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)  # optim spec beyond name, lr
    actor_init_std: float | None = None  # shared nets only, as SLM-Lab's init_tails
    critic_init_std: float | None = None

    @property
    def gain(self) -> float:
        return GAINS[self.activation]


def _init_linear(module: Any, init_fn: Any) -> None:
    import torch

    if isinstance(module, torch.nn.Linear):
        init_fn(module.weight)
        torch.nn.init.constant_(module.bias, 0.0)


def init_layers(policy: Any, nets: ActorCriticNets) -> None:
    """SLM-Lab's ``init_layers`` (and ``init_tails`` for a shared net) on an SB3 policy."""
    import torch

    if nets.init_fn is None:
        return
    init = getattr(torch.nn.init, nets.init_fn)
    if nets.init_fn.startswith("kaiming"):
        init_fn = partial(init, nonlinearity="leaky_relu" if "leaky" in nets.activation else "relu")
    else:
        init_fn = partial(init, gain=nets.gain)
    for module in (policy.mlp_extractor, policy.action_net, policy.value_net):
        module.apply(partial(_init_linear, init_fn=init_fn))
    if nets.separate:
        return
    heads = ((policy.action_net, nets.actor_init_std), (policy.value_net, nets.critic_init_std))
    for head, std in heads:
        if std is not None:
            head.apply(partial(_init_linear, init_fn=partial(torch.nn.init.orthogonal_, gain=std)))


def _parameter_groups(policy: Any, nets: ActorCriticNets) -> list[dict[str, Any]]:
    """The actor's and the critic's parameters, each with its lr scale and clip."""
    actor = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    if hasattr(policy, "log_std"):  # continuous actions: SB3's state-independent log std
        actor.append(policy.log_std)
    critic = [*policy.mlp_extractor.value_net.parameters(), *policy.value_net.parameters()]
    grouped = {id(p) for p in actor + critic}
    missing = [name for name, p in policy.named_parameters() if id(p) not in grouped]
    if missing:  # e.g. a features extractor with weights: SLM-Lab's MLP nets have none
        raise ValueError(f"parameters outside the actor and critic nets: {missing}")
    if not nets.separate:
        return [{"params": actor + critic, "lr_scale": 1.0, "clip": nets.clip_grad_val}]
    # The schedule sets the actor's rate; the critic's is that times its ratio (both 0: any).
    scale = nets.critic_lr / nets.actor_lr if nets.actor_lr else 1.0
    return [
        {"params": actor, "lr_scale": 1.0, "clip": nets.clip_grad_val},
        {"params": critic, "lr_scale": scale, "clip": nets.clip_grad_val},
    ]


def _before_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    """Clip each group's gradient norm on its own (SLM-Lab's per-net clip) and scale its lr.

    SB3 sets one learning rate (the actor's schedule) on every group before an update; the
    groups' rates are scaled for the step and restored after it, so nothing compounds over
    several steps per update.
    """
    import torch

    for group in optimizer.param_groups:
        if group["clip"] is not None:
            torch.nn.utils.clip_grad_norm_(group["params"], group["clip"])
        group["lr"] *= group["lr_scale"]


def _after_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    for group in optimizer.param_groups:
        group["lr"] /= group["lr_scale"]


def group_learning_rates(optimizer: Any) -> list[float]:
    """Each group's learning rate as the next step uses it."""
    return [g["lr"] * g.get("lr_scale", 1.0) for g in optimizer.param_groups]


def apply_nets(model: Any, nets: ActorCriticNets) -> None:
    """Give a freshly built SB3 A2C/PPO model SLM-Lab's init, optimizers and clipping."""
    policy = model.policy
    init_layers(policy, nets)
    groups = _parameter_groups(policy, nets)
    lr = model.lr_schedule(1.0)
    policy.optimizer = type(policy.optimizer)(groups, lr=lr, **nets.optimizer_kwargs)
    policy.optimizer.register_step_pre_hook(_before_step)
    policy.optimizer.register_step_post_hook(_after_step)
