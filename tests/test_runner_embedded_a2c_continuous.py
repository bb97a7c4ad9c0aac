"""The embedded A2C's continuous actions as SLM-Lab's ActorCritic, on its a2c_gae_pendulum_arc.

SLM-Lab's own spec (tests/fixtures/slm-lab/specs, a copy of SLM-Lab's benchmark_arc file) is
planned and built into a real SB3 model, and checked against what SLM-Lab's code does with it:
agent/net/net_util.py (get_policy_out_dim, build_tails, init_layers), agent/algorithm/policy_util.py
(init_action_pd, reduce_multi_action) and env/__init__.py (_needs_action_rescaling, RescaleAction).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.save_util import load_from_zip_file

from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import plan_training
from slm_bench.runners.embedded.gaussian import GaussianHead, SlmLabGaussianPolicy
from slm_bench.runners.embedded.nets import group_learning_rates
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
