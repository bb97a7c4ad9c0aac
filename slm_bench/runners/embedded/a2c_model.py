"""SB3's A2C with SLM-Lab's ActorCritic value loss (``calc_val_loss``).

With ``normalize_v_targets`` SLM-Lab updates its ReturnNormalizer with the batch's value targets
and then takes ``val_loss_coef * MSE(normalize(v_preds), normalize(v_targets))``: the critic
still predicts raw values and the advantages use them; only the value loss is scaled and
clamped. Without it the loss is SB3's (the same MSE on raw values). Everything else in the
train step is SB3's ``A2C.train`` as it is in stable-baselines3 2.x.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.utils import explained_variance

from slm_bench.runners.embedded.return_normalizer import ReturnNormalizer


class SlmLabA2C(A2C):
    """A2C whose value loss normalises predictions and targets as SLM-Lab's, when asked."""

    def __init__(self, *args: Any, normalize_v_targets: bool = False, **kwargs: Any) -> None:
        self.return_normalizer = ReturnNormalizer() if normalize_v_targets else None
        super().__init__(*args, **kwargs)

    def value_loss(self, values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        """The MSE value loss before ``vf_coef``; SLM-Lab's order: update, then normalise."""
        if self.return_normalizer is None:
            return F.mse_loss(returns, values)
        self.return_normalizer.update(returns)
        normalize = self.return_normalizer.normalize
        return F.mse_loss(normalize(values), normalize(returns))

    def train(self) -> None:
        """SB3's A2C.train (one gradient step over the rollout) with ``value_loss``."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        for rollout_data in self.rollout_buffer.get(batch_size=None):  # one batch
            actions = rollout_data.actions
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.long().flatten()
            values, log_prob, entropy = self.policy.evaluate_actions(
                rollout_data.observations, actions
            )
            values = values.flatten()
            advantages = rollout_data.advantages
            if self.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            policy_loss = -(advantages * log_prob).mean()
            value_loss = self.value_loss(values, rollout_data.returns)
            entropy_loss = -torch.mean(-log_prob) if entropy is None else -torch.mean(entropy)
            loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", torch.exp(self.policy.log_std).mean().item())
