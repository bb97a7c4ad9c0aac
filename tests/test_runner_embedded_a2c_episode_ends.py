"""The embedded A2C's env stream is the one SLM-Lab's ActorCritic trains on.

SLM-Lab 5.3 steps ``gym.make_vec(name, num_envs, vectorization_mode="sync")`` (gymnasium 1.x,
autoreset mode NEXT_STEP) and stores every transition (slm_lab/experiment/control.py run_rl,
agent/memory/onpolicy.py); with one env it resets in its own loop after ``done``. The embedded
session's SB3 vector env (slm_bench/runners/embedded/autoreset.py) is stepped here beside
gymnasium's own vector env with the same seeds and actions: the same observations, rewards and
terminations, with the reset step after every episode end and a time limit not an end for SB3.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import plan_training
from slm_bench.runners.embedded.session import make_env

SPEC = Path(__file__).parent / "fixtures/slm-lab/specs/benchmark_arc/a2c/a2c_classic_arc.yaml"


def plan_of(name: str, **env):
    spec = resolve_spec(SPEC, name, {})
    spec["env"].update(env)
    return plan_training(spec, str(SPEC), name)


def slm_lab_vector_env(plan, seeds):
    # env/__init__.py _make_vector_env (without SLM-Lab's normalisers: compared raw here)
    env = gym.make_vec(plan.env_id, num_envs=plan.num_envs, vectorization_mode="sync")
    if plan.rescale_actions:
        env = gym.wrappers.vector.RescaleAction(env, np.float32(-1), np.float32(1))
    return env, env.reset(seed=seeds)[0]


@pytest.mark.parametrize(
    ("name", "steps"),
    [("a2c_gae_pendulum_arc", 405), ("a2c_gae_cartpole_arc", 300)],
    ids=["time-limits", "terminations"],
)
def test_vector_stream_is_gymnasiums_next_step_autoreset(name, steps):
    plan = plan_of(name, normalize_obs=False)
    assert plan.slm_lab_episode_ends
    env = make_env(plan, seed=7)  # SB3 seeds env i with 7 + i
    obs = env.reset()
    reference, ref_obs = slm_lab_vector_env(plan, [7 + i for i in range(plan.num_envs)])
    assert np.allclose(obs, ref_obs)
    rng = np.random.default_rng(0)
    ends = resets = 0
    for _ in range(steps):
        if plan.rescale_actions:
            action = rng.uniform(-1, 1, (plan.num_envs, 1)).astype(np.float32)
        else:
            action = rng.integers(0, 2, plan.num_envs)
        obs, reward, done, infos = env.step(action)
        ref_obs, ref_reward, terminated, truncated, _ = reference.step(action)
        assert np.allclose(obs, ref_obs, atol=1e-5)
        assert np.allclose(reward, ref_reward, atol=1e-4)
        assert done.tolist() == terminated.tolist()  # a time limit is no end for SB3's GAE
        ends += int(np.sum(terminated | truncated))
        resets += sum("episode" not in i and r == 0 for i, r in zip(infos, reward, strict=True))
        # Monitor still records every episode, at its last step
        assert [("episode" in i) for i in infos] == (terminated | truncated).tolist()
    assert ends >= 4 and resets >= ends - plan.num_envs  # reset steps followed the ends
    env.close()
    reference.close()


def test_single_env_resets_at_once_after_a_time_limit():
    # control.py run_rl: `if not is_venv and done: state = env.reset()`; no reset step
    plan = plan_of("a2c_gae_pendulum_arc", normalize_obs=False, num_envs=1)
    env = make_env(plan, seed=3)
    env.reset()
    reference = gym.make("Pendulum-v1")
    reference = gym.wrappers.RescaleAction(reference, np.float32(-1), np.float32(1))
    reference.reset(seed=3)
    for t in range(250):
        action = np.array([[0.3]], dtype=np.float32)
        obs, reward, done, _ = env.step(action)
        ref_obs, ref_reward, terminated, truncated, _ = reference.step(action[0])
        if truncated:
            ref_obs, _ = reference.reset()
        assert np.allclose(obs[0], ref_obs, atol=1e-5) and reward[0] == pytest.approx(ref_reward)
        assert not done[0], t
    env.close()


def test_other_algorithms_keep_sb3s_episode_ends():
    ppo = Path(__file__).parent / "fixtures/slm-lab/specs/benchmark_arc/ppo/ppo_classic_arc.yaml"
    spec = resolve_spec(ppo, "ppo_cartpole_arc", {})
    assert plan_training(spec, str(ppo), "ppo_cartpole_arc").slm_lab_episode_ends is False
