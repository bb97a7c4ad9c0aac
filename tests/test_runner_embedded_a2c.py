"""The embedded A2C as SLM-Lab's ActorCritic: each mapping of SLM-Lab's a2c_gae_acrobot_arc.

SLM-Lab's own spec (tests/fixtures/slm-lab/specs, a copy of SLM-Lab's benchmark_arc file) is
planned and built into a real SB3 model; the model's optimizer, parameter groups, clipping, init
and schedules are checked against what SLM-Lab's code does with the same spec (the references are
named per test: slm_lab/agent/algorithm/actor_critic.py, reinforce.py, policy_util.py,
agent/net/net_util.py, agent/net/base.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from runner_helpers import planned

from slm_bench.runners.embedded.nets import group_learning_rates
from slm_bench.runners.embedded.session import build_model

SPEC = Path(__file__).parent / "fixtures/slm-lab/specs/benchmark_arc/a2c/a2c_classic_arc.yaml"


def plan_of(name: str = "a2c_gae_acrobot_arc", **changes):
    return planned(SPEC, name, **changes)


@pytest.fixture(scope="module")
def model():
    return build_model(plan_of(), seed=1)


def _groups(model):
    actor, critic = model.policy.optimizer.param_groups
    return actor, critic


def test_optimizer_is_slm_labs_adam_per_net(model):
    # net_util.get_optim: torch.optim.Adam(net.parameters(), lr=...) with torch's defaults
    # (eps 1e-8), one per net: actor_optim_spec lr 1e-3, critic_optim_spec lr 3e-3
    optimizer = model.policy.optimizer
    assert type(optimizer) is torch.optim.Adam
    actor, critic = _groups(model)
    assert actor["eps"] == critic["eps"] == 1e-8  # not SB3's 1e-5
    assert group_learning_rates(optimizer) == pytest.approx([1e-3, 3e-3])
    policy = model.policy
    actor_ids = {id(p) for p in [*policy.mlp_extractor.policy_net.parameters()]}
    actor_ids |= {id(p) for p in policy.action_net.parameters()}
    critic_ids = {id(p) for p in [*policy.mlp_extractor.value_net.parameters()]}
    critic_ids |= {id(p) for p in policy.value_net.parameters()}
    assert {id(p) for p in actor["params"]} == actor_ids
    assert {id(p) for p in critic["params"]} == critic_ids
    assert len(actor_ids) + len(critic_ids) == len(list(policy.parameters()))


def test_each_net_clipped_on_its_own():
    # base.py train_step: clip_grad_norm_(self.parameters(), clip_grad_val) per net; a critic
    # gradient 1000x the actor's does not shrink the actor's
    model = build_model(plan_of(), seed=2)
    assert model.max_grad_norm == math.inf  # SB3's joint clip does nothing
    actor, critic = _groups(model)
    for group, scale in ((actor, 1.0), (critic, 1000.0)):
        for param in group["params"]:
            param.grad = torch.full_like(param, scale)
    before = {id(p): p.detach().clone() for g in (actor, critic) for p in g["params"]}
    model.policy.optimizer.step()
    for group in (actor, critic):
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in group["params"]]))
        assert norm.item() == pytest.approx(0.5, rel=1e-4)
        assert any(not torch.equal(before[id(p)], p) for p in group["params"])
    # the step scales the critic's rate and restores it: SB3's next update sets one rate
    assert [g["lr"] for g in (actor, critic)] == pytest.approx([1e-3, 1e-3])


def test_layers_initialised_as_slm_lab(model):
    # net_util.init_layers: orthogonal_ with calculate_gain("tanh") on every Linear (the heads of
    # separate nets too: init_tails applies to shared nets only), biases 0
    gain = torch.nn.init.calculate_gain("tanh")
    policy = model.policy
    linears = [m for m in policy.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 6  # 2 hidden per net, 2 heads
    for layer in linears:
        weight = layer.weight.detach()
        rows, cols = weight.shape
        product = weight @ weight.T if rows <= cols else weight.T @ weight
        assert torch.allclose(product, gain**2 * torch.eye(min(rows, cols)), atol=1e-4)
        assert torch.count_nonzero(layer.bias) == 0


def test_shared_net_heads_use_init_std():
    # init_tails: a shared net's actor and critic heads re-initialised with their stds
    plan = plan_of(**{"agent.net.shared": True, "agent.net.actor_init_std": 0.01})
    assert plan.nets.separate is False and plan.opt_steps_per_update == 1
    model = build_model(plan, seed=3)
    weight = model.policy.action_net.weight.detach()
    assert torch.allclose(weight @ weight.T, 1e-4 * torch.eye(3), atol=1e-7)
    (group,) = model.policy.optimizer.param_groups
    assert group["clip"] == 0.5 and len(group["params"]) == len(list(model.policy.parameters()))


def test_advantages_standardised_and_losses_as_slm_lab():
    # reinforce.py calc_policy_loss: advs = math_util.standardize(advs) whenever len(advs) > 1
    kwargs = plan_of().kwargs
    assert kwargs["normalize_advantage"] is True
    assert kwargs["vf_coef"] == 0.5 and kwargs["gae_lambda"] == 0.95 and kwargs["n_steps"] == 32


def test_entropy_coef_keeps_its_start_when_end_val_is_zero():
    # policy_util.VarScheduler: `if not end_val: end_val = start_val`: the published
    # linear_decay 0.01 -> 0.0 over 300k frames is 0.01 for the whole run
    plan = plan_of()
    assert plan.kwargs["ent_coef"] == 0.01 and plan.ent_coef_schedule is None
    decaying = plan_of(**{"agent.algorithm.entropy_coef_spec.end_val": 0.001})
    assert decaying.ent_coef_schedule.decay.value(150_000) == pytest.approx(0.0055)


def test_separate_nets_tick_two_opt_steps():
    # actor_critic.py train: tick_opt_step() once per net
    assert plan_of().opt_steps_per_update == 2


def test_lr_schedule_scales_both_nets():
    # get_lr_scheduler LinearToZero on each net's optimizer: both rates fall together
    plan = plan_of(**{"agent.net.lr_scheduler_spec": {"name": "LinearToZero", "frame": 300000}})
    model = build_model(plan, seed=4)
    model._current_progress_remaining = 0.25
    model._update_learning_rate(model.policy.optimizer)
    rates = group_learning_rates(model.policy.optimizer)
    assert rates == pytest.approx([0.25e-3, 0.75e-3])


def test_optimizer_keys_beyond_lr_reach_the_optimizer():
    plan = plan_of(**{"agent.net.actor_optim_spec": {"name": "Adam", "lr": 1e-3, "eps": 1e-6}})
    assert plan.nets.optimizer_kwargs == {"eps": 1e-6}
    actor, critic = build_model(plan, seed=5).policy.optimizer.param_groups
    assert actor["eps"] == critic["eps"] == 1e-6


def test_actor_optim_spec_wins_over_optim_spec():
    # actor_critic.py init_nets: actor_net_spec["optim_spec"] = actor_optim_spec
    plan = plan_of(**{"agent.net.optim_spec": {"name": "Adam", "lr": 0.5}})
    assert plan.nets.actor_lr == 1e-3 and plan.kwargs["learning_rate"] == 1e-3
