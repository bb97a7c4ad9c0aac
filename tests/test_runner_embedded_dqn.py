"""The embedded DQN as SLM-Lab's DQN: each mapping, on SLM-Lab's own dqn_classic_arc specs.

SLM-Lab's spec (tests/fixtures/slm-lab/specs, a copy of SLM-Lab's benchmark_arc file) is planned
and built into a real SB3 model; its target, loss, train step, learning-rate schedule,
exploration and replay memory are checked against what SLM-Lab's code does with the same spec
(references per test: slm_lab/agent/algorithm/dqn.py, sarsa.py, policy_util.py,
agent/memory/replay.py, agent/net/net_util.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from runner_helpers import planned

from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import plan_training
from slm_bench.runners.embedded.session import build_model

SPEC = Path(__file__).parent / "fixtures/slm-lab/specs/benchmark_arc/dqn/dqn_classic_arc.yaml"
PROJECT_SPEC = Path(__file__).parents[1] / "specs/dqn_classic.yaml"


def plan_of(name: str = "dqn_boltzmann_acrobot_arc", spec_file: Path = SPEC, **changes):
    return planned(spec_file, name, {"max_frame": 20000}, **changes)


def batch_of(model, n: int = 8):
    """A real replay batch: n random CartPole/Acrobot transitions stored and sampled back."""
    env = model.get_env()
    obs = env.reset()
    for _ in range(n):
        actions = np.array([env.action_space.sample() for _ in range(env.num_envs)])
        next_obs, rewards, dones, infos = env.step(actions)
        model.replay_buffer.add(obs, next_obs, actions, rewards, dones, infos)
        obs = next_obs
    return model.replay_buffer.sample(16)


def test_dqn_target_is_double_q():
    """SLM-Lab's DQN and DoubleDQN (DQNBase.calc_q_loss): the trained net picks the next action,
    the target net values it; SB3's DQN would take the target net's max."""
    model = build_model(plan_of(), seed=1)
    assert model.conventions.target == "double"
    batch = batch_of(model)
    torch.nn.init.normal_(model.q_net_target.q_net[0].weight)  # a target unlike the net
    with torch.no_grad():
        best = model.q_net(batch.next_observations).argmax(dim=1, keepdim=True)
        next_q = model.q_net_target(batch.next_observations).gather(1, best)
        target_max = model.q_net_target(batch.next_observations).max(dim=1, keepdim=True).values
        preds = model.q_net(batch.observations).gather(1, batch.actions.long())
    expected = torch.nn.functional.smooth_l1_loss(
        preds, batch.rewards + (1 - batch.dones) * model.gamma * next_q
    )
    assert model.q_loss(batch).item() == pytest.approx(expected.item(), rel=1e-6)
    sb3 = batch.rewards + (1 - batch.dones) * model.gamma * target_max
    assert expected.item() != pytest.approx(
        torch.nn.functional.smooth_l1_loss(preds, sb3).item(), rel=1e-3
    )


def test_vanilla_dqn_bootstraps_from_the_trained_net():
    """VanillaDQN.calc_q_loss: max over the trained net's own next-state values."""
    model = build_model(plan_of("vanilla_dqn_boltzmann_cartpole_arc"), seed=1)
    batch = batch_of(model)
    torch.nn.init.normal_(model.q_net_target.q_net[0].weight)
    with torch.no_grad():
        next_q = model.q_net(batch.next_observations).max(dim=1, keepdim=True).values
        preds = model.q_net(batch.observations).gather(1, batch.actions.long())
    targets = batch.rewards + (1 - batch.dones) * model.gamma * next_q
    expected = torch.nn.functional.mse_loss(preds, targets)  # its spec's MSELoss
    assert model.q_loss(batch).item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_spec_names_the_loss():
    """net_util.get_loss_fn: any torch.nn loss by name (SB3's DQN always uses Huber)."""
    assert isinstance(build_model(plan_of(), seed=1).loss_fn, torch.nn.SmoothL1Loss)
    mse = build_model(plan_of(**{"agent.net.loss_spec": {"name": "mseloss"}}), seed=1)
    assert isinstance(mse.loss_fn, torch.nn.MSELoss)


def test_train_step_reuses_each_batch_training_batch_iter_times():
    """VanillaDQN.train: training_iter batches, each used for training_batch_iter gradient steps
    (2 x 2 here): 2 samples from memory, 4 optimizer steps, 4 opt_steps."""
    model = build_model(plan_of(), seed=1)
    batch_of(model, 20)
    sampled, stepped = [], []
    sample = model.replay_buffer.sample
    model.replay_buffer.sample = lambda *a, **k: sampled.append(1) or sample(*a, **k)
    model.policy.optimizer.register_step_post_hook(lambda *a: stepped.append(1))
    model.train(gradient_steps=model.gradient_steps, batch_size=model.batch_size)
    assert (len(sampled), len(stepped), model._n_updates) == (2, 4, 4)


def test_linear_to_zero_steps_once_per_train_step():
    """get_lr_scheduler: LinearToZero over frame / (training_frequency * num_envs) scheduler steps,
    one per train step. The project's dqn_acrobot trains every 16 frames with 4 envs: over 2e5
    frames its rate is 0 after 2e5 / 64 = 3125 train steps, a quarter of the run's 12500."""
    spec = resolve_spec(PROJECT_SPEC, "dqn_acrobot", {"max_frame": 200000})
    spec["agent"]["net"]["lr_scheduler_spec"] = {"name": "LinearToZero", "frame": 200000}
    plan = plan_training(spec, str(PROJECT_SPEC), "dqn_acrobot")
    assert plan.dqn.lr_updates == 3125
    model = build_model(plan, seed=1)
    batch_of(model, 20)
    lr0 = model.policy.optimizer.param_groups[0]["lr"]
    for _ in range(3):
        model.train(gradient_steps=1, batch_size=8)
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(lr0 * (1 - 3 / 3125))
    model.train_steps = 3124
    model.train(gradient_steps=1, batch_size=8)
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.0


def test_boltzmann_samples_softmax_of_q_over_tau():
    """policy_util.boltzmann: Categorical(logits=Q / tau), tau from explore_var_spec (5.0 at
    the start of vanilla_dqn_boltzmann_cartpole_arc)."""
    model = build_model(plan_of("vanilla_dqn_boltzmann_cartpole_arc"), seed=1)
    obs = np.zeros((1, 4), dtype=np.float32)
    with torch.no_grad():
        head = model.q_net.q_net[-1]
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 3.0]))  # Q = (0, 3)
        q = model.q_net(torch.as_tensor(obs))[0]
    expected = torch.softmax(q / 5.0, dim=0)[1].item()
    torch.manual_seed(0)
    actions = [int(model.predict(obs)[0][0]) for _ in range(3000)]
    assert np.mean(actions) == pytest.approx(expected, abs=0.03)
    assert expected == pytest.approx(0.6457, abs=1e-4)  # softmax(0, 0.6): not greedy, not uniform


def test_acts_with_its_policy_before_training_starts():
    """SLM-Lab acts with its policy from frame 0; SB3 would act uniformly before learning_starts."""
    model = build_model(plan_of(**{"agent.algorithm.explore_var_spec.start_val": 0.0}), seed=1)
    model.exploration_rate = 0.0  # greedy
    model._last_obs = model.get_env().reset()
    assert model.learning_starts == 32 and model.num_timesteps == 0
    with torch.no_grad():
        greedy = model.q_net(torch.as_tensor(model._last_obs)).argmax(dim=1).numpy()
    for _ in range(5):
        action, _ = model._sample_action(model.learning_starts, n_envs=model.n_envs)
        assert (action == greedy).all()


def test_training_start_step_defaults_to_the_batch_size():
    """VanillaDQN.init_algorithm_params: training_start_step defaults to memory.batch_size."""
    spec = resolve_spec(SPEC, "dqn_boltzmann_acrobot_arc", {})
    del spec["agent"]["algorithm"]["training_start_step"]
    assert plan_training(spec, "f", "n").kwargs["learning_starts"] == 64


def test_replay_keeps_float16_states_and_cer_adds_the_newest():
    """memory/replay.py: states stored as float16; use_cer replaces the end of each batch with
    the transitions not yet sampled, oldest first, as Replay.apply_cer."""
    model = build_model(plan_of(), seed=1)  # use_cer: true
    buffer = model.replay_buffer
    obs = np.full((4, 6), 0.1234567, dtype=np.float32)
    for step in range(3):
        actions = np.arange(4) % 3
        rewards = np.full(4, step * 10.0) + np.arange(4)  # transition id: step * 10 + env
        buffer.add(obs, obs, actions, rewards, np.zeros(4), [{}] * 4)
    assert buffer.observations[0, 0, 0] == np.float32(np.float16(0.1234567))
    first = buffer.sample(8).rewards.flatten().tolist()
    assert first[-8:] == [0, 1, 2, 3, 10, 11, 12, 13]  # the 8 oldest of 12 unseen
    buffer.add(obs, obs, actions, np.full(4, 30.0) + np.arange(4), np.zeros(4), [{}] * 4)
    second = buffer.sample(8).rewards.flatten().tolist()
    assert second[-8:] == [20, 21, 22, 23, 30, 31, 32, 33]
    plain = build_model(plan_of(**{"agent.memory.use_cer": False}), seed=1).replay_buffer
    assert plain.use_cer is False


def test_a_dqn_session_trains_end_to_end():
    """A short real training: the loss is SLM-Lab's, opt_step counts gradient steps."""
    plan = plan_of(**{"env.max_frame": 2000})
    model = build_model(plan, seed=3)
    model.learn(total_timesteps=2000)
    # trains every vector step after frame 32: 2 x 2 gradient steps each
    assert model._n_updates == 4 * sum(1 for f in range(4, 2001, 4) if f > 32)
    assert np.isfinite(model.logger.name_to_value["train/loss"])
