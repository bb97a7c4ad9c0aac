"""Episode ends as SLM-Lab's ActorCritic sees them, on an env inside SB3's DummyVecEnv.

SLM-Lab 5.3 steps a gymnasium 1.x vector env (``gym.make_vec``, autoreset mode NEXT_STEP) and
trains on every transition it returns (``experiment/control.py`` ``run_rl``,
``OnPolicyBatchReplay``):

- an episode's last step returns its final observation; the *next* step resets that env, ignores
  the action and returns the reset observation with reward 0, neither terminated nor truncated.
  That step is a frame on SLM-Lab's clock and a transition in its batch;
- its GAE (``math_util.calc_gaes``) cuts on ``terminated`` only: on a time limit it bootstraps
  from the value of the batch's next state (the final observation) and runs on across the reset.

SB3's DummyVecEnv resets on ``terminated or truncated`` within the same step, adds gamma times the
final observation's value to a truncated step's reward and cuts the advantage there.
``NextStepAutoreset`` gives SB3 SLM-Lab's stream: a truncation is reported as a plain step, and
after any episode end the next step is the reset step (a termination is still reported, so SB3
cuts there as SLM-Lab does; SB3's reset then returns the final observation again).

With one env SLM-Lab resets in its loop (``if not is_venv and done``): no reset step, and the
state after a time limit is the reset observation, whose value its GAE bootstraps from.
``SameStepAutoreset`` does that: a truncation is reported as a plain step whose observation is
the reset one.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym


class NextStepAutoreset(gym.Wrapper):
    """gymnasium's NEXT_STEP vector autoreset for one env (see the module docstring)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._final_obs: Any = None  # set while the next step is the reset step

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        if self._final_obs is not None:  # SB3 resets after a termination: reset step comes next
            return self._final_obs, {}
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        if self._final_obs is not None:
            self._final_obs = None
            obs, info = self.env.reset()
            return obs, 0.0, False, False, info
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._final_obs = obs
        return obs, reward, bool(terminated), False, info


class SameStepAutoreset(gym.Wrapper):
    """SLM-Lab's single-env loop: a time limit resets at once and is not an episode end."""

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if truncated and not terminated:
            obs, _ = self.env.reset()
        return obs, reward, bool(terminated), False, info
