"""The embedded A2C's continuous actions as SLM-Lab's ActorCritic, on its a2c_gae_pendulum_arc.

SLM-Lab's own spec (tests/fixtures/slm-lab/specs, a copy of SLM-Lab's benchmark_arc file) is
planned and built into a real SB3 model, and checked against what SLM-Lab's code does with it:
agent/net/net_util.py (get_policy_out_dim, build_tails, init_layers), agent/algorithm/policy_util.py
(init_action_pd, reduce_multi_action) and env/__init__.py (_needs_action_rescaling, RescaleAction).
"""

from __future__ import annotations

import ast
import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file

from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import plan_training
from slm_bench.runners.embedded.a2c_model import SlmLabA2C
from slm_bench.runners.embedded.gaussian import GaussianHead, SlmLabGaussianPolicy
from slm_bench.runners.embedded.nets import group_learning_rates
from slm_bench.runners.embedded.return_normalizer import ReturnNormalizer
from slm_bench.runners.embedded.session import build_model, make_env

SPEC = Path(__file__).parent / "fixtures/slm-lab/specs/benchmark_arc/a2c/a2c_classic_arc.yaml"


def plan_of(name: str = "a2c_gae_pendulum_arc"):
    return plan_training(resolve_spec(SPEC, name, {}), str(SPEC), name)


@pytest.fixture(scope="module")
def model():
    return build_model(plan_of(), seed=1)


def test_actor_outputs_loc_and_log_scale_of_the_state(model):
    # get_policy_out_dim: a 1-d action gives one tail of 2 units [loc, log_scale]; no SB3 log std
    policy = model.policy
    assert isinstance(policy, SlmLabGaussianPolicy) and not hasattr(policy, "log_std")
    (tail,) = policy.action_net.tails
    assert (tail.in_features, tail.out_features) == (256, 2)
    # init_layers: orthogonal_ with calculate_gain("relu") on the tail too, bias 0
    gain = torch.nn.init.calculate_gain("relu")
    weight = tail.weight.detach()
    assert torch.allclose(weight @ weight.T, gain**2 * torch.eye(2), atol=1e-4)
    assert torch.count_nonzero(tail.bias) == 0
    obs = torch.randn(64, 3)
    latent = policy.mlp_extractor.forward_actor(obs)
    loc, log_scale = tail(latent).detach().split(1, dim=-1)
    dist = policy.get_distribution(obs).distribution
    assert torch.allclose(dist.loc, loc) and torch.allclose(dist.scale, log_scale.exp())
    assert dist.scale.std() > 0  # the scale depends on the state
    # policy_util.reduce_multi_action(Normal(loc, scale).entropy()): summed over action dims
    entropy = policy.get_distribution(obs).entropy().detach()
    assert torch.allclose(entropy, torch.distributions.Normal(loc, log_scale.exp()).entropy()[:, 0])


def test_log_scale_clamped_as_init_action_pd(model):
    # init_action_pd: scale = torch.clamp(scale, min=-5, max=2).exp()
    build = build_model(plan_of(), seed=2)
    (tail,) = build.policy.action_net.tails
    obs = torch.randn(8, 3)
    for bias, expected in ((30.0, 2.0), (-30.0, -5.0)):
        with torch.no_grad():
            tail.weight.zero_()
            tail.bias[1] = bias
        scale = build.policy.get_distribution(obs).distribution.scale.detach()
        assert torch.allclose(scale, torch.full_like(scale, np.exp(expected)))


def test_head_is_in_the_actors_optimizer_group(model):
    # use_same_optim: the critic net gets the actor's optim spec (Adam 2e-3), still its own net
    actor, critic = model.policy.optimizer.param_groups
    head = {id(p) for p in model.policy.action_net.parameters()}
    assert head <= {id(p) for p in actor["params"]}
    assert not head & {id(p) for p in critic["params"]}
    assert group_learning_rates(model.policy.optimizer) == pytest.approx([2e-3, 2e-3])


def test_actions_rescaled_to_unit_box():
    # _needs_action_rescaling: Pendulum's [-2, 2] torque becomes [-1, 1] (RescaleAction)
    plan = plan_of()
    assert plan.rescale_actions is True and plan.policy == "SlmLabGaussianPolicy"
    env = make_env(plan, seed=3)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    env.reset()
    env.step(np.array([[0.5], [-1.0], [0.0], [1.0]], dtype=np.float32))
    torques = [e.unwrapped.last_u for e in env.venv.envs]  # VecNormalize over DummyVecEnv
    assert torques == pytest.approx([1.0, -2.0, 0.0, 2.0])
    env.close()


def test_discrete_a2c_keeps_sb3_categorical_policy():
    plan = plan_of("a2c_gae_acrobot_arc")
    assert plan.policy == "MlpPolicy" and plan.rescale_actions is False


def test_multi_dimensional_heads():
    # build_tails: two tails [locs, log scales]; with log_std_init a state-independent parameter
    two_tails = GaussianHead(16, 3, log_std_init=None)
    assert [t.out_features for t in two_tails.tails] == [3, 3] and two_tails.log_std is None
    loc, log_scale = two_tails(torch.randn(5, 16))
    assert loc.shape == log_scale.shape == (5, 3)
    with_param = GaussianHead(16, 3, log_std_init=-7.0)
    assert [t.out_features for t in with_param.tails] == [3]
    loc, log_scale = with_param(torch.randn(5, 16))
    assert torch.equal(log_scale, torch.full((5, 3), -5.0))  # the clamp applies to it too
    # a 1-d action ignores log_std_init (get_policy_out_dim's int out_dim takes build_tails' path)
    assert GaussianHead(16, 1, log_std_init=-0.5).log_std is None


def test_model_archive_holds_the_head(model, tmp_path):
    # the session saves its model (model/{prefix}_model.pt): the head's weights are in it
    model.save(tmp_path / "m.zip")
    _, params, _ = load_from_zip_file(tmp_path / "m.zip", device="cpu")
    saved = params["policy"]
    assert "log_std" not in saved
    assert torch.equal(saved["action_net.tails.0.weight"], model.policy.action_net.tails[0].weight)


# -- normalize_v_targets: SLM-Lab's ReturnNormalizer in the critic's value loss --

SLM_LAB_SRC = Path(
    os.environ.get("SLM_BENCH_SLM_LAB_SRC")
    or Path(__file__).resolve().parents[2] / "shared" / "slm-lab"
)


def slm_lab_return_normalizer() -> type:
    """SLM-Lab's own ReturnNormalizer class, compiled from its actor_critic.py alone (the module's
    imports pull in the whole of SLM-Lab); skips without SLM-Lab's source."""
    source = SLM_LAB_SRC / "slm_lab/agent/algorithm/actor_critic.py"
    if not source.is_file():
        pytest.skip(f"no SLM-Lab source at {SLM_LAB_SRC} (set SLM_BENCH_SLM_LAB_SRC)")
    tree = ast.parse(source.read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ReturnNormalizer"]
    namespace: dict = {"np": np, "torch": torch}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(source), "exec"), namespace)
    return namespace["ReturnNormalizer"]


def test_return_normalizer_matches_slm_labs_number_for_number():
    theirs, ours = slm_lab_return_normalizer()(), ReturnNormalizer()
    generator = torch.Generator().manual_seed(0)
    # Pendulum-like targets at growing scales; a batch of 1 (variance 0), then values past the clamp
    sizes_scales = [(1, 3.0), (512, 0.5), (8192, 150.0), (64, 900.0), (8192, 40.0), (3, 1e4)]
    for size, scale in sizes_scales:
        batch = scale * torch.randn(size, generator=generator) - scale
        theirs.update(batch)
        ours.update(batch)
        stats = ("count", "mean", "m2", "var")
        assert [getattr(ours, k) for k in stats] == [getattr(theirs, k) for k in stats]
        probe = torch.cat([batch, 50 * batch])
        assert torch.equal(ours.normalize(probe), theirs.normalize(probe))
    assert ours.scale > 1
    assert torch.equal(ours.normalize(torch.tensor([-1e9, 1e9])), torch.tensor([-10.0, 10.0]))


def small_pendulum_plan(normalize_v_targets: bool | None = None):
    """SLM-Lab's a2c_gae_pendulum_arc with 16 steps per update (64 transitions), to keep it fast."""
    name = "a2c_gae_pendulum_arc"
    spec = resolve_spec(SPEC, name, {})
    spec["agent"]["algorithm"]["training_frequency"] = 16
    if normalize_v_targets is not None:
        spec["agent"]["algorithm"]["normalize_v_targets"] = normalize_v_targets
    return plan_training(spec, str(SPEC), name)


class ExpectedValueLoss(BaseCallback):
    """After each rollout, before its update: the value loss computed by hand from the rollout and
    the critic's predictions, with the running scale over every target seen so far."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[np.ndarray] = []
        self.expected: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        returns = buffer.returns.reshape(-1).astype(np.float64)
        obs = torch.as_tensor(buffer.observations.reshape(len(returns), -1))
        actions = torch.as_tensor(buffer.actions.reshape(len(returns), -1))
        with torch.no_grad():
            values = self.model.policy.evaluate_actions(obs, actions)[0].flatten().double().numpy()
        self.targets.append(returns)
        scale = max(np.sqrt(np.concatenate(self.targets).var() + 1e-8), 1.0)  # population var
        preds, targets = (np.clip(v / scale, -10, 10) for v in (values, returns))
        self.expected.append(self.model.vf_coef * float(np.mean((preds - targets) ** 2)))


def test_value_loss_is_coef_times_mse_of_normalised_values():
    plan = small_pendulum_plan()
    assert plan.normalize_v_targets and not any("normalize_v_targets" in n for n in plan.notes)
    model = build_model(plan, seed=4)
    assert isinstance(model, SlmLabA2C) and model.vf_coef == 0.5
    expected = ExpectedValueLoss()
    losses = []
    for _ in range(3):  # three updates: the scale runs over all of them
        model.learn(plan.num_envs * 16, callback=expected, reset_num_timesteps=False)
        losses.append(model.vf_coef * model.logger.name_to_value["train/value_loss"])
    assert losses == pytest.approx(expected.expected, rel=1e-5)
    assert model.return_normalizer.count == 3 * 64
    # the targets' scale is far from 1, so the normalised loss is far from the raw one
    assert model.return_normalizer.scale > 2


def test_without_normalize_v_targets_the_update_is_sb3s():
    plan = small_pendulum_plan(normalize_v_targets=False)
    assert plan.normalize_v_targets is False
    model = build_model(plan, seed=5)
    assert model.return_normalizer is None
    model.learn(plan.num_envs * 16)  # a rollout in the buffer (and one update)
    policy, optimizer = copy.deepcopy(model.policy.state_dict()), model.policy.optimizer
    optim_state = copy.deepcopy(optimizer.state_dict())
    outcomes = []
    for train in (model.train, lambda: A2C.train(model)):  # ours, then SB3's own, from one state
        model.policy.load_state_dict(policy)
        optimizer.load_state_dict(copy.deepcopy(optim_state))
        train()
        params = [p.detach().clone() for p in model.policy.parameters()]
        outcomes.append((params, dict(model.logger.name_to_value)))
    (ours, our_log), (sb3s, sb3_log) = outcomes
    # equal to float rounding: one step repeated from one state differs in the last bits already
    # (the CPU's matmul kernels), so not bit for bit
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(ours, sb3s, strict=True))
    for key in ("train/value_loss", "train/policy_loss", "train/entropy_loss"):
        assert our_log[key] == pytest.approx(sb3_log[key], rel=1e-5)
    assert our_log["train/value_loss"] > 100  # raw Pendulum returns: no scale divided out
    assert not all(torch.equal(a, b) for a, b in zip(ours, policy.values(), strict=True))


def test_ppo_keeps_the_note_and_sb3s_value_loss():
    ppo = Path(__file__).parent / "fixtures/slm-lab/specs/benchmark_arc/ppo/ppo_classic_arc.yaml"
    plan = plan_training(resolve_spec(ppo, "ppo_pendulum_arc", {}), str(ppo), "ppo_pendulum_arc")
    assert plan.normalize_v_targets is False
    assert "agent.algorithm.normalize_v_targets is not available in SB3: not applied" in plan.notes
