"""SLM-Lab's Gaussian policy for continuous actions, as an SB3 ActorCriticPolicy.

SLM-Lab's actor net (``agent/net/net_util.py`` ``get_policy_out_dim``, ``build_tails``) ends in
the Gaussian's location *and* log scale: one linear tail of 2 units for a one-dimensional action
(``[loc, log_scale]``), two tails of ``action_dim`` units otherwise, or, with ``log_std_init``
and more than one action dimension, a state-independent log-std parameter.
``policy_util.init_action_pd`` clamps the log scale to [-5, 2] before ``exp``. Its env rescales
a Box action space to [-1, 1] (``env/__init__.py``: gymnasium's ``RescaleAction``), so the policy
acts in [-1, 1].

SB3's ``MlpPolicy`` learns one state-independent log std (init 0, no bounds) and acts in the env's
own bounds. ``SlmLabGaussianPolicy`` replaces SB3's head with SLM-Lab's; the session wraps the env
in ``RescaleAction`` (see ``TrainingPlan.rescale_actions``).
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy

LOG_SCALE_MIN, LOG_SCALE_MAX = -5.0, 2.0  # policy_util.init_action_pd's clamp


class GaussianHead(torch.nn.Module):
    """SLM-Lab's actor tails: (loc, log_scale) from the actor's last hidden layer."""

    def __init__(self, latent_dim: int, action_dim: int, log_std_init: float | None) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.log_std: torch.nn.Parameter | None = None
        if action_dim == 1:  # get_policy_out_dim: one tail of 2 units; log_std_init unused
            self.tails = torch.nn.ModuleList([torch.nn.Linear(latent_dim, 2)])
        elif log_std_init is not None:  # build_tails: a loc tail and a log-std parameter
            self.tails = torch.nn.ModuleList([torch.nn.Linear(latent_dim, action_dim)])
            self.log_std = torch.nn.Parameter(torch.ones(action_dim) * log_std_init)
        else:  # two tails: locs, log scales
            self.tails = torch.nn.ModuleList(
                [torch.nn.Linear(latent_dim, action_dim) for _ in range(2)]
            )

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.action_dim == 1:
            loc, log_scale = self.tails[0](latent).split(1, dim=-1)
        elif self.log_std is not None:
            loc = self.tails[0](latent)
            log_scale = self.log_std.expand_as(loc)
        else:
            loc, log_scale = (tail(latent) for tail in self.tails)
        return loc, log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)


class SlmLabGaussianPolicy(ActorCriticPolicy):
    """An SB3 actor-critic policy whose continuous actions follow SLM-Lab's Gaussian head.

    ``slm_log_std_init`` is the spec's ``agent.net.log_std_init`` (None: state-dependent scale).
    """

    def __init__(self, *args: Any, slm_log_std_init: float | None = None, **kwargs: Any) -> None:
        self.slm_log_std_init = slm_log_std_init
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        if not isinstance(self.action_dist, DiagGaussianDistribution):
            raise ValueError("SlmLabGaussianPolicy needs a Box action space")
        del self.log_std  # SB3's state-independent log std: replaced by the head's
        action_dim = self.action_dist.action_dim
        self.action_net = GaussianHead(
            self.mlp_extractor.latent_dim_pi, action_dim, self.slm_log_std_init
        )
        optimizer_class: Any = self.optimizer_class  # a torch.optim class: takes lr
        self.optimizer = optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Any:
        loc, log_scale = self.action_net(latent_pi)
        return self.action_dist.proba_distribution(loc, log_scale)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "slm_log_std_init": self.slm_log_std_init}
