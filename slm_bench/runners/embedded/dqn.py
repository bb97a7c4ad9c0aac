"""SLM-Lab's DQN conventions, read from a spec: what the embedded DQN (dqn_model.py) trains by.

SLM-Lab's ``VanillaDQN``/``DQN``/``DoubleDQN`` (``agent/algorithm/dqn.py``, ``sarsa.py``,
``policy_util.py``, ``memory/replay.py``, ``net/net_util.py``) differ from SB3's DQN beyond
their hyperparameters:

- the target: ``DQN`` and ``DoubleDQN`` are the same class in SLM-Lab 5.3, both Double-DQN (the
  trained net picks the next action, the target net values it); ``VanillaDQN`` takes the max of
  the trained net itself. SB3 takes the max of its target net.
- the loss: ``loss_spec`` names any torch.nn loss (SLM-Lab's default is ``MSELoss``); SB3 always
  uses the Huber loss.
- a train step: ``training_iter`` batches, each used for ``training_batch_iter`` gradient steps;
  SB3 samples a new batch for every gradient step.
- ``LinearToZero`` steps once per train step over ``frame / (training_frequency * num_envs)``
  steps. DQN's ``training_frequency`` counts frames (one train step every
  ``training_frequency / num_envs`` vector steps), so a frequency above 1 with several envs
  brings the rate to 0 before the end of the run: SLM-Lab's quirk, kept.
- ``action_policy: boltzmann`` samples a softmax of Q / tau (tau from ``explore_var_spec``).
- the policy acts from the first frame (SB3 acts uniformly at random before ``learning_starts``).
- ``use_cer`` (combined experience replay): the newest transitions not yet sampled replace the
  end of every batch; states are stored as float16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slm_bench.runners.embedded.spec_reader import SpecReader

# torch.nn losses a DQN spec may name (SLM-Lab's get_loss_fn matches names case-insensitively).
LOSSES = ("MSELoss", "SmoothL1Loss", "HuberLoss", "L1Loss")


@dataclass(frozen=True)
class DQNConventions:
    """How SLM-Lab trains a DQN spec (see the module docstring)."""

    target: str  # "double": DQN/DoubleDQN; "online": VanillaDQN (the trained net's own max)
    loss: str = "MSELoss"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    training_iter: int = 1
    training_batch_iter: int = 1
    # LinearToZero: the number of train steps over which the rate falls to 0 (None: constant)
    lr_updates: float | None = None
    boltzmann: bool = False
    use_cer: bool = False
    float16_states: bool = True  # SLM-Lab's Replay keeps non-image states as float16

    @property
    def gradient_steps(self) -> int:
        return self.training_iter * self.training_batch_iter


def _loss(reader: SpecReader) -> tuple[str, dict[str, Any]]:
    spec = reader.get("agent.net.loss_spec", {"name": "MSELoss"})
    name = str(spec.get("name", "MSELoss"))
    canonical = next((loss for loss in LOSSES if loss.lower() == name.lower()), None)
    if canonical is None:
        raise reader.error("agent.net.loss_spec.name", f"expected one of {', '.join(LOSSES)}")
    return canonical, {k: v for k, v in spec.items() if k != "name"}


def dqn_conventions(
    reader: SpecReader, spec_algorithm: str, num_envs: int, notes: list[str]
) -> DQNConventions:
    """SLM-Lab's DQN conventions for a spec (its algorithm, net and memory blocks)."""
    loss, loss_kwargs = _loss(reader)
    lr_updates = None
    scheduler = reader.get("agent.net.lr_scheduler_spec")
    if scheduler and scheduler.get("name") == "LinearToZero":
        frames = reader.number("agent.net.lr_scheduler_spec.frame")
        frequency = reader.integer("agent.algorithm.training_frequency", 1)
        lr_updates = max(1.0, frames / (frequency * num_envs))  # SLM-Lab's get_lr_scheduler
    elif scheduler:
        notes.append(
            f"agent.net.lr_scheduler_spec {scheduler.get('name')} is not mapped: constant rate"
        )
    policy = reader.get("agent.algorithm.action_policy", "epsilon_greedy")
    if policy not in ("epsilon_greedy", "boltzmann"):
        raise reader.error(
            "agent.algorithm.action_policy", f"expected epsilon_greedy or boltzmann, got {policy!r}"
        )
    if reader.get("agent.net.init_fn") is not None:
        notes.append("agent.net.init_fn is not mapped for DQN: torch's default init")
    return DQNConventions(
        target="online" if spec_algorithm == "VanillaDQN" else "double",
        loss=loss,
        loss_kwargs=loss_kwargs,
        training_iter=reader.integer("agent.algorithm.training_iter", 1),
        training_batch_iter=reader.integer("agent.algorithm.training_batch_iter", 1),
        lr_updates=lr_updates,
        boltzmann=policy == "boltzmann",
        use_cer=bool(reader.get("agent.memory.use_cer", False)),
    )
