"""SB3's DQN trained by SLM-Lab's DQN conventions (dqn.py): target, loss, train step, lr
schedule, Boltzmann exploration, acting from the first frame, and SLM-Lab's replay memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import update_learning_rate

from slm_bench.runners.embedded.dqn import DQNConventions


class SlmLabReplay(ReplayBuffer):
    """SLM-Lab's ``Replay``: states kept as float16, and with ``use_cer`` the transitions not yet
    sampled (oldest first, at most a batch) replacing the end of a uniform batch.

    SLM-Lab numbers transitions step by step, env by env: as the flat index ``pos * n_envs + env``
    of this buffer.
    """

    def __init__(
        self, *args: Any, use_cer: bool = False, float16_states: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.use_cer = use_cer
        self.float16_states = float16_states
        self.seen = 0  # transitions added
        self.sampled = 0  # transitions CER has put into a batch

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        if self.float16_states:
            obs = np.asarray(obs).astype(np.float16).astype(self.observations.dtype)
            next_obs = np.asarray(next_obs).astype(np.float16).astype(self.observations.dtype)
        super().add(obs, next_obs, action, reward, done, infos)
        self.seen += self.n_envs

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        upper = self.buffer_size if self.full else self.pos
        batch_inds = np.random.randint(0, upper, size=batch_size)
        env_inds = np.random.randint(0, self.n_envs, size=batch_size)
        if self.use_cer:
            new = min(self.seen - self.sampled, batch_size)
            if new > 0:
                flat = self.sampled + np.arange(new)
                batch_inds[batch_size - new :] = (flat // self.n_envs) % self.buffer_size
                env_inds[batch_size - new :] = flat % self.n_envs
                self.sampled += new
        return self._gather(batch_inds, env_inds, env)

    def _gather(self, batch_inds: np.ndarray, env_inds: np.ndarray, env: Any) -> Any:
        data = (
            self._normalize_obs(self.observations[batch_inds, env_inds, :], env),
            self.actions[batch_inds, env_inds, :],
            self._normalize_obs(self.next_observations[batch_inds, env_inds, :], env),
            # a time-limit end bootstraps (SLM-Lab zeroes the future on `terminated` only)
            (self.dones[batch_inds, env_inds] * (1 - self.timeouts[batch_inds, env_inds])).reshape(
                -1, 1
            ),
            self._normalize_reward(self.rewards[batch_inds, env_inds].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))


class SlmLabDQN(DQN):
    """SB3's DQN with SLM-Lab's conventions (``conventions``, see dqn.py)."""

    def __init__(self, *args: Any, conventions: DQNConventions, **kwargs: Any) -> None:
        self.conventions = conventions
        self.train_steps = 0  # SLM-Lab's lr scheduler steps once per train step
        kwargs["replay_buffer_class"] = SlmLabReplay
        kwargs["replay_buffer_kwargs"] = {
            "use_cer": conventions.use_cer,
            "float16_states": conventions.float16_states,
        }
        kwargs["gradient_steps"] = conventions.gradient_steps
        super().__init__(*args, **kwargs)
        self.loss_fn = getattr(torch.nn, conventions.loss)(**conventions.loss_kwargs)
        self.base_lr = self.lr_schedule(1.0)

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        # SLM-Lab acts with its policy from the first frame; SB3 acts at random before
        # learning_starts
        return super()._sample_action(0, action_noise, n_envs)

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        if deterministic or not self.conventions.boltzmann:
            return super().predict(observation, state, episode_start, deterministic)
        # SLM-Lab's boltzmann: sample a Categorical with logits Q / tau (tau: explore_var)
        obs, vectorized = self.policy.obs_to_tensor(observation)
        tau = self.exploration_schedule(self._current_progress_remaining)
        with torch.no_grad():
            logits = self.q_net(obs) / tau
        action = torch.distributions.Categorical(logits=logits).sample().cpu().numpy()
        return (action if vectorized else action[0]), state

    def q_loss(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """SLM-Lab's calc_q_loss: Double-DQN's target (DQN, DoubleDQN) or the trained net's own
        max (VanillaDQN), zeroed on terminal transitions."""
        q_preds = self.q_net(batch.observations).gather(1, batch.actions.long())
        with torch.no_grad():
            online = self.q_net(batch.next_observations)
            if self.conventions.target == "online":
                next_q = online.max(dim=1, keepdim=True).values
            else:
                best = online.argmax(dim=1, keepdim=True)
                next_q = self.q_net_target(batch.next_observations).gather(1, best)
            targets = batch.rewards + (1 - batch.dones) * self.gamma * next_q
        return self.loss_fn(q_preds, targets)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """One SLM-Lab train step: ``training_iter`` batches, each ``training_batch_iter``
        gradient steps, then the LinearToZero scheduler's step."""
        c = self.conventions
        self.policy.set_training_mode(True)
        optimizer = self.policy.optimizer
        losses = []
        replay = self.replay_buffer
        assert replay is not None  # SB3 makes the buffer in _setup_model, before any train()
        for _ in range(c.training_iter):
            batch = replay.sample(batch_size, env=self._vec_normalize_env)
            for _ in range(c.training_batch_iter):
                loss = self.q_loss(batch)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), self.max_grad_norm)
                optimizer.step()
                losses.append(loss.item())
        self.train_steps += 1
        if c.lr_updates is not None:  # LambdaLR: lr * max(0, 1 - steps / updates), after the step
            update_learning_rate(
                optimizer, self.base_lr * max(0.0, 1.0 - self.train_steps / c.lr_updates)
            )
        self._n_updates += len(losses)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
