"""The embedded runner: SLM-Lab spec -> SB3 mapping, and a real (short) training run."""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from slm_bench.errors import BenchError
from slm_bench.formats.logs import read_score, strip_ansi
from slm_bench.formats.metrics import SCALAR_KEYS
from slm_bench.formats.run_folder import RunLayout
from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import (
    CORE_COLUMNS,
    Decay,
    FrameSchedule,
    plan_training,
    run_trial,
)
from slm_bench.runners.embedded import trial as embedded_trial

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slm-lab"


def arc(*sizes: int, activation: str = "Tanh") -> dict:
    layers = []
    for size in sizes:
        layers += [{"LazyLinear": {"out_features": size}}, {activation: None}]
    return {"modules": {"body": {"Sequential": layers}}, "graph": {"input": "x", "output": "body"}}


def schedule(name: str, start: float, end: float, end_step: int = 0) -> dict:
    return {"name": name, "start_val": start, "end_val": end, "start_step": 0, "end_step": end_step}


def spec_body(algorithm: dict, env: str = "CartPole-v1", net: dict | None = None, **extra) -> dict:
    body = {
        "agent": {
            "name": algorithm["name"],
            "algorithm": algorithm,
            "memory": extra.pop("memory", {"name": "OnPolicyBatchReplay"}),
            "net": net
            or {
                "type": "TorchArcNet",
                "arc": arc(64, 64),
                "hid_layers_activation": "tanh",
                "clip_grad_val": 0.5,
                "optim_spec": {"name": "Adam", "lr": 0.0005},
            },
        },
        "env": {"name": env, "num_envs": 4, "max_t": None, "max_frame": 200000},
        "meta": {"distributed": False, "log_frequency": 500, "max_session": 4, "max_trial": 1},
    }
    body.update(extra)
    return body


PPO = {
    "name": "PPO",
    "gamma": 0.97,
    "lam": 0.91,
    "clip_eps_spec": schedule("linear_decay", 0.3, 0.1, 100000),
    "entropy_coef_spec": schedule("no_decay", 0.007, 0.007),
    "val_loss_coef": 0.6,
    "time_horizon": 256,
    "minibatch_size": 128,
    "training_epoch": 15,
}


# ---------------------------------------------------------------------------------------------
# plan_training: SLM-Lab spec -> SB3


def test_ppo_hyperparameters_land_in_sb3_kwargs():
    plan = plan_training(spec_body(PPO), "ppo.yaml", "ppo_test")
    kw = plan.kwargs
    assert plan.algorithm == "PPO" and plan.env_id == "CartPole-v1"
    assert (kw["gamma"], kw["gae_lambda"], kw["vf_coef"]) == (0.97, 0.91, 0.6)
    assert (kw["n_steps"], kw["batch_size"], kw["n_epochs"]) == (256, 128, 15)
    assert kw["ent_coef"] == 0.007 and plan.ent_coef_schedule is None
    assert kw["max_grad_norm"] == 0.5 and kw["learning_rate"] == 0.0005
    assert kw["policy_kwargs"] == {
        "net_arch": {"pi": [64, 64], "vf": [64, 64]},
        "activation_fn": "Tanh",
        "optimizer_class": "Adam",
    }
    # a decaying clip_eps becomes an SB3 schedule over frames (progress remaining 1 -> 0)
    clip = kw["clip_range"]
    assert isinstance(clip, FrameSchedule)
    assert clip(1.0) == pytest.approx(0.3)
    assert clip(0.75) == pytest.approx(0.2)  # frame 50000: halfway down to 0.1
    assert clip(0.0) == pytest.approx(0.1)
    # 256 steps x 4 envs / 128 per minibatch = 8 optimizer steps per epoch
    assert plan.opt_steps_per_update == 8
    assert (plan.num_envs, plan.max_frame, plan.max_session, plan.log_frequency) == (
        4,
        200000,
        4,
        500,
    )
    assert plan.columns == CORE_COLUMNS + ("clip_eps", "entropy")


def test_ppo_minibatch_is_rounded_and_capped_as_slm_lab_does():
    algorithm = {**PPO, "time_horizon": 30, "minibatch_size": 1000}
    kw = plan_training(spec_body(algorithm)).kwargs
    assert kw["n_steps"] == 32  # rounded up to a multiple of num_envs
    assert kw["batch_size"] == 32 * 4  # capped at time_horizon * num_envs


def test_a2c_mapping_with_entropy_decay_and_rmsprop():
    algorithm = {
        "name": "ActorCritic",
        "gamma": 0.99,
        "lam": 0.95,
        "entropy_coef_spec": schedule("linear_decay", 0.01, 0.001, 200000),
        "val_loss_coef": 0.5,
        "training_frequency": 32,
    }
    net = {
        "type": "MLPNet",
        "hid_layers": [32, 16],
        "hid_layers_activation": "relu",
        "clip_grad_val": None,
        "optim_spec": {"name": "RMSprop", "lr": 0.0007},
        "lr_scheduler_spec": {"name": "LinearToZero", "frame": 200000},
    }
    plan = plan_training(spec_body(algorithm, net=net))
    kw = plan.kwargs
    assert plan.algorithm == "A2C"
    assert kw["n_steps"] == 32 and kw["gae_lambda"] == 0.95
    # RMSprop as SLM-Lab builds it (torch's defaults), not SB3's A2C RMSprop (eps 1e-5)
    assert kw["use_rms_prop"] is False
    assert kw["policy_kwargs"] == {
        "net_arch": {"pi": [32, 16], "vf": [32, 16]},
        "activation_fn": "ReLU",
        "optimizer_class": "RMSprop",
        "optimizer_kwargs": {},
        "ortho_init": False,
    }
    assert kw["max_grad_norm"] == math.inf and plan.nets.clip_grad_val is None  # no clipping
    assert kw["ent_coef"] == 0.01
    assert plan.ent_coef_schedule.decay.value(100000) == pytest.approx(0.0055)
    assert kw["learning_rate"](0.5) == pytest.approx(0.00035)
    assert plan.columns[-2:] == ("entropy_coef", "entropy")


DQN = {
    "name": "DQN",
    "action_policy": "epsilon_greedy",
    "explore_var_spec": schedule("linear_decay", 1.0, 0.1, 20000),
    "gamma": 0.99,
    "training_batch_iter": 2,
    "training_iter": 3,
    "training_frequency": 16,
    "training_start_step": 32,
}
REPLAY = {"name": "Replay", "batch_size": 64, "max_size": 50000}
DQN_NET = {
    "type": "TorchArcNet",
    "arc": arc(256, 128, activation="SELU"),
    "clip_grad_val": 0.55,
    "loss_spec": {"name": "SmoothL1Loss"},
    "optim_spec": {"name": "AdamW", "lr": 0.0003},
    "update_type": "replace",
    "update_frequency": 75,
}


def test_dqn_mapping():
    plan = plan_training(spec_body(DQN, net=DQN_NET, memory=REPLAY))
    kw = plan.kwargs
    assert plan.algorithm == "DQN" and plan.notes == ()
    assert kw["train_freq"] == 4  # a train step every 16 frames = every 4 steps of 4 envs
    assert kw["gradient_steps"] == 6  # training_iter * training_batch_iter
    assert (kw["batch_size"], kw["buffer_size"], kw["learning_starts"]) == (64, 50000, 32)
    assert kw["target_update_interval"] == 75 and kw["max_grad_norm"] == 0.55
    assert kw["policy_kwargs"] == {
        "net_arch": [256, 128],
        "optimizer_class": "AdamW",
        "activation_fn": "SELU",
    }
    explore = plan.exploration_schedule
    assert explore(1.0) == 1.0 and explore(0.95) == pytest.approx(0.55)  # frame 10000
    assert explore(0.5) == pytest.approx(0.1)
    assert plan.columns[-1] == "explore_var"


def test_dqn_variants_are_mapped_with_notes():
    algorithm = {**DQN, "name": "DoubleDQN", "action_policy": "boltzmann"}
    memory = {**REPLAY, "name": "PrioritizedReplay", "alpha": 0.6}
    net = {**DQN_NET, "loss_spec": {"name": "MSELoss"}}
    plan = plan_training(spec_body(algorithm, net=net, memory=memory))
    assert plan.notes == ("PrioritizedReplay is not available in SB3's DQN: uniform replay used",)
    assert (plan.dqn.target, plan.dqn.loss, plan.dqn.boltzmann) == ("double", "MSELoss", True)
    # Boltzmann's tau follows explore_var_spec itself (1.0 -> 0.1)
    assert plan.exploration_schedule(1.0) == 1.0 and plan.exploration_schedule(0.0) == 0.1
    vanilla = plan_training(spec_body({**DQN, "name": "VanillaDQN"}, net=DQN_NET, memory=REPLAY))
    assert (vanilla.kwargs["target_update_interval"], vanilla.kwargs["tau"]) == (1, 1.0)
    assert vanilla.dqn.target == "online"


SAC = {
    "name": "SoftActorCritic",
    "gamma": 0.99,
    "training_iter": 4,
    "training_frequency": 1,
    "training_start_step": 256,
}
SAC_NET = {
    "type": "TorchArcNet",
    "arc": arc(256, 256, activation="ReLU"),
    "optim_spec": {"name": "Adam", "lr": 0.0003},
    "update_type": "polyak",
    "polyak_coef": 0.005,
}


def test_sac_mapping_for_continuous_actions():
    memory = {"name": "Replay", "batch_size": 256, "max_size": 100000}
    plan = plan_training(spec_body(SAC, env="Pendulum-v1", net=SAC_NET, memory=memory))
    kw = plan.kwargs
    assert plan.algorithm == "SAC"
    assert (kw["gradient_steps"], kw["train_freq"], kw["learning_starts"]) == (4, 1, 256)
    assert (kw["batch_size"], kw["buffer_size"], kw["tau"], kw["ent_coef"]) == (
        256,
        100000,
        0.005,
        "auto",
    )
    assert kw["policy_kwargs"]["net_arch"] == {"pi": [256, 256], "qf": [256, 256]}
    assert plan.columns[-1] == "alpha"


def test_discrete_sac_is_refused():
    memory = {"name": "Replay", "batch_size": 256, "max_size": 100000}
    with pytest.raises(BenchError) as error:
        plan_training(spec_body(SAC, net=SAC_NET, memory=memory), "sac.yaml", "sac_cartpole")
    message = str(error.value)
    assert message.startswith("sac.yaml: sac_cartpole: agent.algorithm.name: SoftActorCritic")
    assert "discrete action space (CartPole-v1)" in message and "use runner: slm-lab" in message


@pytest.mark.parametrize("name", ["Reinforce", "SARSA", "CrossQ"])
def test_unsupported_algorithms_are_refused(name):
    with pytest.raises(BenchError) as error:
        plan_training(spec_body({"name": name, "gamma": 0.99}), "x.yaml", "x_cartpole")
    assert str(error.value) == (
        f"x.yaml: x_cartpole: agent.algorithm.name: {name} is not supported by the embedded "
        "runner (supported: PPO, ActorCritic, VanillaDQN, DQN, DoubleDQN, SoftActorCritic); "
        "use runner: slm-lab"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda b: b["agent"]["net"]["arc"]["modules"]["body"]["Sequential"].append(
                {"Conv2d": {}}
            ),
            "agent.net.arc",
        ),
        (
            lambda b: b["agent"]["algorithm"]["clip_eps_spec"].update(name="cosine_decay"),
            "agent.algorithm.clip_eps_spec.name",
        ),
        (lambda b: b["env"].update(name="NoSuchEnv-v0"), "env.name"),
        (lambda b: b["meta"].update(log_frequency=100000), "meta.log_frequency"),
        (
            lambda b: b["agent"]["net"]["optim_spec"].update(name="Lion"),
            "agent.net.optim_spec.name",
        ),
    ],
)
def test_bad_specs_name_the_field(change, field):
    body = copy.deepcopy(spec_body(PPO))
    change(body)
    with pytest.raises(BenchError) as error:
        plan_training(body, "bad.yaml", "bad")
    assert str(error.value).startswith(f"bad.yaml: bad: {field}: ")
    assert "\n" not in str(error.value)


def test_decays_follow_slm_lab():
    assert Decay("no_decay", 0.2, 0.0, 0, 100).value(50) == 0.2
    linear = Decay("linear_decay", 1.0, 0.1, 100, 1100)
    assert linear.value(50) == 1.0 and linear.value(600) == pytest.approx(0.55)
    assert linear.value(5000) == 0.1
    rate = Decay("rate_decay", 1.0, 0.01, 0, 2000)  # 20 decays of x0.9 over 2000 steps
    assert rate.value(100) == pytest.approx(0.9) and rate.value(1000) == pytest.approx(0.9**10)


def test_checkpoint_frames():
    body = spec_body(PPO)
    body["env"].update(max_frame=3000)
    assert plan_training(body).checkpoint_frames() == [500, 1000, 1500, 2000, 2500, 3000]
    body["env"].update(max_frame=2002, num_envs=3)  # frames 3, 6, ...: ckpt when frame % 500 < 3
    assert plan_training(body).checkpoint_frames() == [501, 1002, 1500, 2001, 2004]


def test_project_specs_plan():
    """Every spec in specs/ resolves with its Settings budget and maps onto SB3."""
    expected = {
        "ppo_classic.yaml": {"ppo_cartpole": "PPO", "ppo_acrobot": "PPO", "ppo_pendulum": "PPO"},
        "a2c_classic.yaml": {"a2c_cartpole": "A2C", "a2c_acrobot": "A2C", "a2c_pendulum": "A2C"},
        "dqn_classic.yaml": {"dqn_cartpole": "DQN", "dqn_acrobot": "DQN"},
        "sac_classic.yaml": {"sac_pendulum": "SAC"},
    }
    for file, names in expected.items():
        for name, algorithm in names.items():
            frames = 200000 if "cartpole" in name else 300000
            plan = plan_training(resolve_spec(REPO / "specs" / file, name, {"max_frame": frames}))
            settings = (plan.max_frame, plan.num_envs, plan.max_session, plan.log_frequency)
            assert (plan.algorithm, settings) == (algorithm, (frames, 4, 4, 500)), name


def test_slm_lab_spec_plans():
    spec_file = FIXTURES / "specs" / "benchmark_arc" / "ppo" / "ppo_classic_arc.yaml"
    plan = plan_training(resolve_spec(spec_file, "ppo_cartpole_arc"), str(spec_file))
    assert plan.kwargs["learning_rate"] == 0.0005909  # actor_optim_spec.lr
    assert plan.kwargs["clip_range"] == 0.1312 and plan.kwargs["n_epochs"] == 15
    assert any("critic_optim_spec" in note for note in plan.notes)


# ---------------------------------------------------------------------------------------------
# run_trial: a real short training run


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """PPO on CartPole for 3000 frames, 2 sessions in 2 worker processes.

    The workers get their own TMPDIR, to check that training leaves no temp folders behind.
    """
    body = resolve_spec(REPO / "specs" / "ppo_classic.yaml", "ppo_cartpole", {"max_frame": 3000})
    body["meta"]["max_session"] = 2
    data = tmp_path_factory.mktemp("data")
    worker_tmp = tmp_path_factory.mktemp("worker_tmp")
    stream = io.StringIO()
    previous = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(worker_tmp)
    try:
        folder = run_trial(
            body,
            "specs/ppo_classic.yaml",
            "ppo_cartpole",
            "ppo_cartpole",
            data,
            max_workers=2,
            stream=stream,
            seed=7,
        )
    finally:
        if previous is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = previous
    console = data.parent / "console.log"
    console.write_text(stream.getvalue())
    return folder, console, worker_tmp


def read_json(path: Path):
    return json.loads(path.read_text())


def test_run_folder_layout(short_run):
    folder, _, _ = short_run
    assert re.fullmatch(r"ppo_cartpole_\d{4}_\d{2}_\d{2}_\d{6}", folder.name)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging leftovers
    assert not list(short_run[2].glob("SB3-*"))  # SB3's default logger folders are not made
    layout = RunLayout(folder, "ppo_cartpole")
    paths = [
        layout.spec_json,
        layout.trial_spec_json,
        layout.trial_metrics_json,
        layout.trial_metrics_scalar_json,
        layout.root_trial_metrics_scalar_json,
        layout.trial_log,
        layout.graph_dir,
    ]
    for s in range(2):
        paths += [layout.session_log(s), layout.model_dir / f"ppo_cartpole_t0_s{s}_model.pt"]
        for mode in ("train", "eval"):
            paths += [
                layout.session_df_csv(s, mode),
                layout.session_metrics_json(s, mode),
                layout.session_metrics_scalar_json(s, mode),
            ]
    for path in paths:
        assert path.exists(), path
    assert not list(folder.rglob("*_optim.pt"))
    spec = read_json(layout.spec_json)
    assert spec == read_json(layout.trial_spec_json)
    assert spec["name"] == "ppo_cartpole" and spec["env"]["max_frame"] == 3000
    meta = spec["meta"]
    assert (meta["experiment"], meta["trial"], meta["session"]) == (0, 0, -1)
    assert meta["prepath"] == f"data/{folder.name}/ppo_cartpole_t0"
    assert folder.name.endswith(meta["experiment_ts"])
    assert {"git_sha", "random_seed"} <= set(meta)


def test_session_df_and_metrics(short_run):
    folder, _, _ = short_run
    layout = RunLayout(folder, "ppo_cartpole")
    frames = [500, 1000, 1500, 2000, 2500, 3000]
    session_ma = []
    for s in range(2):
        df = pd.read_csv(layout.session_df_csv(s))
        assert tuple(df.columns) == CORE_COLUMNS + ("clip_eps", "entropy")
        assert df["frame"].tolist() == frames
        assert df["t"].tolist() == [f / 4 for f in frames]
        # SLM-Lab's vector-env clock counts no episodes: epi is empty
        assert (df["total_reward"] > 0).all() and df["epi"].isna().all()
        assert df["opt_step"].iloc[-1] > 0 and (df["clip_eps"] == 0.2).all()
        # each row's total_reward_ma is the mean of total_reward so far (fewer than 100 rows)
        expected_ma = df["total_reward"].expanding().mean()
        assert df["total_reward_ma"].tolist() == pytest.approx(expected_ma.tolist(), rel=1e-6)
        assert layout.session_df_csv(s, "eval").read_text() == layout.session_df_csv(s).read_text()
        metrics = read_json(layout.session_metrics_json(s))
        assert metrics["scalar"] == read_json(layout.session_metrics_scalar_json(s))
        assert metrics["scalar"]["total_reward_ma"] == pytest.approx(df["total_reward"].mean())
        session_ma.append(metrics["scalar"]["total_reward_ma"])
    trial = read_json(layout.trial_metrics_json)
    assert list(trial["scalar"]) == list(SCALAR_KEYS)
    assert trial["scalar"] == read_json(layout.trial_metrics_scalar_json)
    assert trial["scalar"] == read_json(layout.root_trial_metrics_scalar_json)
    assert trial["scalar"]["frame"] == 3000
    assert trial["scalar"]["total_reward_ma"] == pytest.approx(sum(session_ma) / 2)
    local = trial["local"]
    for key in ("mean_returns", "strengths", "sample_efficiencies", "training_efficiencies"):
        assert [len(series) for series in local[key]] == [6, 6], key
    assert [len(series) for series in local["stabilities"]] == [5, 5]
    assert len(local["consistencies"]) == 6
    assert local["frames"] == frames and len(local["opt_steps"]) == 6


def test_console_and_log_lines(short_run):
    folder, console, _ = short_run
    lines = [strip_ansi(line) for line in console.read_text().splitlines()]
    assert (
        "| slm_lab.cli.main:run_spec | SLM-Lab: Running specs/ppo_classic.yaml ppo_cartpole train "
        f"with 2 sessions | output: data/{folder.name}/ppo_cartpole_t0" in lines[0]
    )
    assert lines[-1].endswith(f"| slm_lab.cli.main:run_spec | Output: data/{folder.name}")
    run = read_score(console)  # the project's own reader of SLM-Lab logs
    assert run.data_folder == folder.name and run.mode == "train"
    scalar = read_json(RunLayout(folder, "ppo_cartpole").trial_metrics_scalar_json)
    assert run.trial_metrics["total_reward_ma"] == pytest.approx(
        scalar["total_reward_ma"], abs=0.006
    )
    assert list(run.trial_metrics) == list(SCALAR_KEYS)
    progress = [line for line in lines if "slm_lab.agent:log_summary" in line]
    assert {"ppo_cartpole_t0_s0 [train]", "ppo_cartpole_t0_s1 [train]"} <= {
        line.rsplit(" ", 2)[-2] + " " + line.rsplit(" ", 1)[-1] for line in progress
    }
    trial_log = (folder / "log" / "ppo_cartpole_t0.log").read_text()
    assert "\x1b[" not in trial_log and "trial_metrics: frame:3.00e+03" in trial_log
    assert f"Output: data/{folder.name}" in trial_log
    for s in range(2):
        session_log = (folder / "log" / f"ppo_cartpole_t0_s{s}.log").read_text()
        assert f"Trial 0 session {s} ppo_cartpole_t0_s{s} [train]" in session_log
        assert "frame:3.00e+03" in session_log and session_log.rstrip().endswith(
            f"Session {s} done"
        )


def test_a_crashing_session_fails_the_run_and_leaves_no_folder(tmp_path, monkeypatch):
    body = resolve_spec(REPO / "specs" / "ppo_classic.yaml", "ppo_cartpole", {"max_frame": 3000})

    def crash(plan, session, *args):
        raise RuntimeError(f"simulated failure in session {session}\nsecond line")

    monkeypatch.setattr(embedded_trial, "train_session", crash)
    with pytest.raises(BenchError) as error:
        run_trial(
            body,
            "specs/ppo_classic.yaml",
            "ppo_cartpole",
            "ppo_cartpole",
            tmp_path,
            max_workers=1,
            stream=io.StringIO(),
        )
    assert str(error.value) == (
        "specs/ppo_classic.yaml: ppo_cartpole: session 0 failed: RuntimeError: second line"
    )
    assert list(tmp_path.iterdir()) == []


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    first, when, reservation = embedded_trial.reserve_folder(tmp_path, "ppo_cartpole")
    second, later, _ = embedded_trial.reserve_folder(tmp_path, "ppo_cartpole")
    assert reservation.exists() and first != second
    assert later > when


@pytest.mark.slow
def test_ppo_cartpole_full_budget_scores_above_400(tmp_path):
    """The default job's PPO row: 4 sessions x 2e5 frames (a few minutes on 2 cores)."""
    body = resolve_spec(REPO / "specs" / "ppo_classic.yaml", "ppo_cartpole", {"max_frame": 200000})
    folder = run_trial(
        body,
        "specs/ppo_classic.yaml",
        "ppo_cartpole",
        "ppo_cartpole",
        tmp_path,
        max_workers=2,
        stream=io.StringIO(),
    )
    scalar = read_json(RunLayout(folder, "ppo_cartpole").trial_metrics_scalar_json)
    assert scalar["frame"] == 200000
    assert scalar["total_reward_ma"] > 400
