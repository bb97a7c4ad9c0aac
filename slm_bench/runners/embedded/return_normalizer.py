"""SLM-Lab's ``ReturnNormalizer`` (``agent/algorithm/actor_critic.py``): the running scale of the
critic's value targets, applied with ``agent.algorithm.normalize_v_targets``.

Running mean and variance of every value target seen (Chan's merge of each batch's mean and
population variance into the totals); ``normalize`` divides by ``max(sqrt(var + eps), 1)``
without centring on the mean and clamps to +-``clip``. SLM-Lab also keeps a ``_warmup`` count
(1000) that nothing reads, so none is kept here. The arithmetic (torch's batch mean and
variance as Python floats, then float operations in the same order) is SLM-Lab's, so the two
give the same numbers.
"""

from __future__ import annotations

import math

import torch


class ReturnNormalizer:
    """Running statistics of value targets; ``update`` with a batch, then ``normalize``."""

    def __init__(self, epsilon: float = 1e-8, clip: float = 10.0) -> None:
        self.epsilon = epsilon
        self.clip = clip
        self.mean = 0.0
        self.var = 1.0  # until more than one value is seen
        self.count = 0
        self.m2 = 0.0  # sum of squared differences from the mean

    def update(self, values: torch.Tensor) -> None:
        """Merge a batch's count, mean and population variance into the running ones."""
        batch = values.detach().flatten()
        batch_count = len(batch)
        batch_mean = batch.mean().item()
        batch_var = batch.var(correction=0).item() if batch_count > 1 else 0.0
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / max(total, 1)
        self.m2 += batch_var * batch_count + delta**2 * self.count * batch_count / max(total, 1)
        self.count = total
        if self.count > 1:
            self.var = self.m2 / self.count

    @property
    def scale(self) -> float:
        """The divisor: the running std, at least 1 (SLM-Lab's guard against blowing up)."""
        return max(math.sqrt(self.var + self.epsilon), 1.0)

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` over the running scale (not centred), clamped to +-clip."""
        return torch.clamp(values / self.scale, -self.clip, self.clip)
