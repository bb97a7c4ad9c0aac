# ruff: noqa: E501 - the table of refused values reads best one case per line
"""The config does what it says, and every bad value is refused at plan time with one line.

``--configfile`` replaces the project's config.yaml (the demo matrix never leaks into another
config); a checkout plans exactly its own rows; env ids, algorithm keys, labels, spec names,
``sets``, durations and frame budgets are checked by ``build_matrix`` on both routes (the
config's ``envs`` and a checkout's BENCHMARKS.md). A few cases run a real ``snakemake -n``; the
rest call ``load_config``/``build_matrix`` directly.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from slm_lab_checkout import build_checkout
from workflow_helpers import REPO, make_workdir, planned_jobs, planned_outputs, snakemake

from slm_bench.config_source import config_source
from slm_bench.errors import BenchError
from slm_bench.matrix.config import build_matrix, load_config

DEMO = yaml.safe_load((REPO / "config.yaml").read_text())
SETTINGS = {"max_frame": 2000, "num_envs": 4, "max_session": 4, "log_frequency": 500}
ENV_ID_EXPECTED = (
    "(expected a Gymnasium env id such as CartPole-v1, ALE/Pong-v5 or playground/CartpoleBalance "
    "(letters, digits, _ + -; only the ALE/ or playground/ prefix))"
)
TABLE_TEXT = "one line, no '|', no leading or trailing spaces"


def acrobot_config() -> dict:
    row = {"label": "PPO", "spec_file": "specs/ppo_classic.yaml", "spec_name": "ppo_acrobot"}
    return {"envs": {"Acrobot-v1": {"settings": SETTINGS, "algorithms": {"ppo": row}}}}


def demo_with(change) -> dict:
    config = copy.deepcopy(DEMO)
    change(config)
    return config


def algorithms(config: dict) -> dict:
    return config["envs"]["CartPole-v1"]["algorithms"]


def refusal(config: dict) -> str:
    """The one-line error ``load_config`` + ``build_matrix`` give for ``config``."""
    with pytest.raises(BenchError) as caught:
        build_matrix(load_config(config), "my.yaml")
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    return message


def failed_plan_line(result, needle: str) -> str:
    """The one output line of a refused plan that names ``needle``; the plan exited non-zero."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    lines = [line for line in result.stdout.splitlines() if needle in line]
    assert len(lines) == 1, result.stdout
    return lines[0]


# -- --configfile replaces config.yaml -------------------------------------------------------


def test_a_configfile_replaces_the_demo_matrix(tmp_path):
    workdir = make_workdir(tmp_path, DEMO)  # config.yaml: the CartPole demo
    (workdir / "my.yaml").write_text(yaml.safe_dump(acrobot_config()))
    result = snakemake(workdir, "--configfile=my.yaml", "-n")
    assert result.returncode == 0, result.stdout
    assert planned_jobs(result.stdout)["run_cell"] == 1
    assert "CartPole" not in result.stdout
    outputs = {out.split(",")[0] for out in planned_outputs(result.stdout)}
    assert "results/Acrobot-v1/ppo/run.json" in outputs


def test_user_envs_replace_the_demo_algorithms_instead_of_merging(tmp_path):
    workdir = make_workdir(tmp_path, DEMO)
    only_ppo = demo_with(lambda c: algorithms(c).pop("dqn") and algorithms(c).pop("a2c"))
    (workdir / "my.yaml").write_text(yaml.safe_dump({"envs": only_ppo["envs"]}))
    result = snakemake(workdir, "--configfile=my.yaml", "-n")
    assert result.returncode == 0, result.stdout
    assert planned_jobs(result.stdout)["run_cell"] == 1
    assert not re.search(r"results/CartPole-v1/(dqn|a2c)/", result.stdout)


def test_without_a_configfile_config_yaml_is_the_config(tmp_path):
    workdir = make_workdir(tmp_path, acrobot_config())
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout
    assert planned_jobs(result.stdout)["run_cell"] == 1


def test_a_checkout_config_plans_exactly_the_checkouts_rows(tmp_path):
    checkout = build_checkout(tmp_path / "SLM-Lab")
    workdir = make_workdir(tmp_path / "work", DEMO)
    mine = {"checkout": {"root": str(checkout), "phases": ["Classic Control"]}}
    (workdir / "my.yaml").write_text(yaml.safe_dump(mine))
    result = snakemake(workdir, "--configfile=my.yaml", "-n")
    assert result.returncode == 0, result.stdout
    matrix = build_matrix(load_config(copy.deepcopy(mine)))
    assert {entry.env_id for entry in matrix.envs.values()} == {
        "CartPole-v1",
        "Acrobot-v1",
        "Pendulum-v1",
    }
    assert planned_jobs(result.stdout)["run_cell"] == len(matrix.cells) > 3
    planned = {out.split(",")[0] for out in planned_outputs(result.stdout)}
    expected = {f"results/{env}/{algo}/run.json" for env, algo in matrix.cells}
    assert expected <= planned
    assert not re.search(r"results/CartPole-v1/(ppo|a2c|dqn)/", result.stdout)


def test_errors_name_the_configfile_given():
    assert config_source([]) == "config.yaml"
    assert config_source([Path("my.yaml").resolve()]) == "my.yaml"
    assert config_source(["/elsewhere/a.yaml", "b.yaml"]) == "/elsewhere/a.yaml, b.yaml"


# -- refused at plan time, by a real snakemake -n ---------------------------------------------


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            lambda c: c["envs"].update({"../escape": c["envs"].pop("CartPole-v1")}),
            f"my.yaml: envs: env id: got '../escape' {ENV_ID_EXPECTED}",
        ),
        (
            lambda c: algorithms(c).update({"ppo\n": algorithms(c).pop("ppo")}),
            "my.yaml: envs.CartPole-v1.algorithms: got 'ppo\\n' (expected an algorithm key of "
            "letters, digits, _ + - (starting with a letter or digit))",
        ),
        (
            lambda c: algorithms(c)["ppo"].update(label="PPO | x"),
            "my.yaml: envs.CartPole-v1.algorithms.ppo.label: got 'PPO | x' (expected an "
            f"Algorithm column text such as PPO or DDQN+PER: {TABLE_TEXT})",
        ),
        (
            lambda c: c.update(time_limit="0s"),
            "my.yaml: time_limit: '0s' is out of range (expected more than 0s, at most 720h)",
        ),
    ],
    ids=["env-id-escapes-results", "algo-key-final-newline", "label-with-pipe", "time-limit-0"],
)
def test_snakemake_refuses_the_plan_with_one_line(tmp_path, change, line):
    workdir = make_workdir(tmp_path, DEMO)
    (workdir / "my.yaml").write_text(yaml.safe_dump(demo_with(change)))
    result = snakemake(workdir, "--configfile=my.yaml", "-n")
    assert failed_plan_line(result, "my.yaml: ") == line
    assert not (workdir / "results").exists()


def test_a_checkout_heading_that_escapes_results_is_refused(tmp_path):
    root = build_checkout(tmp_path / "SLM-Lab", complete=False)
    benchmarks = root / "docs" / "BENCHMARKS.md"
    text = benchmarks.read_text(encoding="utf-8")
    assert "#### 1.1 CartPole-v1" in text
    benchmarks.write_text(text.replace("#### 1.1 CartPole-v1", "#### 1.1 ../../../victim"))
    workdir = make_workdir(tmp_path / "work", {"checkout": {"root": str(root)}})
    result = snakemake(workdir, "-n")
    assert failed_plan_line(result, "victim") == (
        f"{benchmarks}: env id: got '../../../victim' {ENV_ID_EXPECTED}"
    )
    assert not list(tmp_path.rglob("victim*"))


# -- refused at plan time: one line each ------------------------------------------------------


def _set_env_id(env_id):
    return lambda c: c["envs"].update({env_id: c["envs"].pop("CartPole-v1")})


def _set_algo_key(key):
    return lambda c: algorithms(c).update({key: algorithms(c).pop("ppo")})


def _set_row(**values):
    return lambda c: algorithms(c)["ppo"].update(values)


WHERE = "my.yaml: envs.CartPole-v1.algorithms.ppo"
SPEC_NAME_EXPECTED = "(expected a spec name of letters, digits, _ . + - (not starting with - or .))"
SET_EXPECTED = "(expected a number, or text without spaces that does not start with -)"
ALGO_EXPECTED = (
    "(expected an algorithm key of letters, digits, _ + - (starting with a letter or digit))"
)
LABEL_EXPECTED = f"(expected an Algorithm column text such as PPO or DDQN+PER: {TABLE_TEXT})"

REFUSED = {
    "env-dotdot": (_set_env_id("../x"), f"my.yaml: envs: env id: got '../x' {ENV_ID_EXPECTED}"),
    "env-space": (_set_env_id("Cart Pole"), f"my.yaml: envs: env id: got 'Cart Pole' {ENV_ID_EXPECTED}"),
    "env-newline": (_set_env_id("CartPole\n"), f"my.yaml: envs: env id: got 'CartPole\\n' {ENV_ID_EXPECTED}"),
    "env-pipe": (_set_env_id("Cart|Pole"), f"my.yaml: envs: env id: got 'Cart|Pole' {ENV_ID_EXPECTED}"),
    "env-shell": (_set_env_id("$(rm -rf x)"), f"my.yaml: envs: env id: got '$(rm -rf x)' {ENV_ID_EXPECTED}"),
    "env-namespace": (_set_env_id("Foo/CartPole-v1"), f"my.yaml: envs: env id: got 'Foo/CartPole-v1' {ENV_ID_EXPECTED}"),
    "env-absolute": (_set_env_id("/etc/x"), f"my.yaml: envs: env id: got '/etc/x' {ENV_ID_EXPECTED}"),
    "env-reserved": (
        _set_env_id("plots"),
        "my.yaml: envs: env id: got 'plots' (expected an env id that is not a results/ folder "
        "name: benchmarks, checkout, hf_data, logs, phases, plots, publish, report, search, "
        "stats, store, work)",
    ),
    "env-same-folder": (
        lambda c: c["envs"].update({"ALE/CartPole-v1": copy.deepcopy(c["envs"]["CartPole-v1"])}),
        "my.yaml: envs.ALE/CartPole-v1: shares the results folder CartPole-v1 with CartPole-v1 "
        "(expected env ids that differ without their ALE/ or playground/ prefix)",
    ),
    "algo-dotdot": (_set_algo_key(".."), f"my.yaml: envs.CartPole-v1.algorithms: got '..' {ALGO_EXPECTED}"),
    "algo-slash": (_set_algo_key("a/b"), f"my.yaml: envs.CartPole-v1.algorithms: got 'a/b' {ALGO_EXPECTED}"),
    "algo-newline": (_set_algo_key("ppo\n"), f"my.yaml: envs.CartPole-v1.algorithms: got 'ppo\\n' {ALGO_EXPECTED}"),
    "label-pipe": (_set_row(label="A|B"), f"{WHERE}.label: got 'A|B' {LABEL_EXPECTED}"),
    "label-newline": (_set_row(label="A\nB"), f"{WHERE}.label: got 'A\\nB' {LABEL_EXPECTED}"),
    "label-line-separator": (_set_row(label="A\u2028B"), f"{WHERE}.label: got 'A\\u2028B' {LABEL_EXPECTED}"),
    "label-leading-space": (_set_row(label=" PPO"), f"{WHERE}.label: got ' PPO' {LABEL_EXPECTED}"),
    "label-trailing-space": (_set_row(label="PPO "), f"{WHERE}.label: got 'PPO ' {LABEL_EXPECTED}"),
    "label-empty": (_set_row(label=""), f"{WHERE}.label: got '' {LABEL_EXPECTED}"),
    "label-twice": (
        _set_row(label="DQN"),
        f"{WHERE}.label: 'DQN' is also the label of dqn (expected one row per label in an env)",
    ),
    "spec-name-space": (_set_row(spec_name="ppo cartpole"), f"{WHERE}.spec_name: got 'ppo cartpole' {SPEC_NAME_EXPECTED}"),
    "spec-name-newline": (_set_row(spec_name="ppo\n"), f"{WHERE}.spec_name: got 'ppo\\n' {SPEC_NAME_EXPECTED}"),
    "spec-name-slash": (_set_row(spec_name="a/b"), f"{WHERE}.spec_name: got 'a/b' {SPEC_NAME_EXPECTED}"),
    "spec-name-option": (_set_row(spec_name="--help"), f"{WHERE}.spec_name: got '--help' {SPEC_NAME_EXPECTED}"),
    "spec-file-pipe": (
        _set_row(spec_file="a|b.yaml"),
        f"{WHERE}.spec_file: got 'a|b.yaml' (expected a spec file path: {TABLE_TEXT})",
    ),
    "sets-value-space": (_set_row(sets={"env": "a b"}), f"{WHERE}.sets.env: got 'a b' {SET_EXPECTED}"),
    "sets-value-newline": (_set_row(sets={"env": "a\n"}), f"{WHERE}.sets.env: got 'a\\n' {SET_EXPECTED}"),
    "sets-value-option": (_set_row(sets={"env": "-x"}), f"{WHERE}.sets.env: got '-x' {SET_EXPECTED}"),
    "sets-key-space": (
        _set_row(sets={"a b": 1}),
        f"{WHERE}.sets key: got 'a b' (expected a name of letters, digits and _)",
    ),
    "sets-key-option": (
        _set_row(sets={"-s": 1}),
        f"{WHERE}.sets key: got '-s' (expected a name of letters, digits and _)",
    ),
    "sets-max-frame": (
        _set_row(sets={"max_frame": 5}),
        f"{WHERE}.sets.max_frame: got 5 (expected no max_frame here: it comes from the Settings line)",
    ),
    "budget-above-settings": (
        _set_row(max_frame="1e6"),
        f"{WHERE}.max_frame: frame budget 1e6 is above the Settings max_frame 2e5 (expected at "
        "most the Settings line)",
    ),
    "time-limit-negative": (
        lambda c: c.update(time_limit="-1h"),
        "my.yaml: time_limit: got '-1h' (expected a duration with its unit, e.g. 6h, 90m or 45s)",
    ),
    "time-limit-huge": (
        lambda c: c.update(time_limit="99999999999h"),
        "my.yaml: time_limit: '99999999999h' is out of range (expected more than 0s, at most 720h)",
    ),
    "dstack-duration-inf": (
        lambda c: c.update(dstack={"poll_interval_s": float("inf")}),
        "my.yaml: dstack.poll_interval_s: inf is not a duration (expected a duration such as "
        "45s, 90m, 6h or 2d)",
    ),
    "dstack-max-duration-0": (
        lambda c: c.update(dstack={"max_duration": "0"}),
        "my.yaml: dstack.max_duration: '0' is out of range (expected more than 0s, at most 720h)",
    ),
    "status-rule": (
        lambda c: c.update(status_rule="strict"),
        "my.yaml: status_rule: got 'strict' (expected one of 'legend', 'baseline')",
    ),
    "seed-text": (lambda c: c.update(seed="1"), "my.yaml: seed: expected integer or null, got '1' (YAML reads a bare 1 as text; write 1)"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_value_is_refused_with_one_line(case):
    change, line = REFUSED[case]
    config = demo_with(change)
    with pytest.raises(BenchError) as caught:
        build_matrix(load_config(config, "my.yaml"), "my.yaml")
    assert str(caught.value) == line


def test_the_checkout_route_checks_the_derived_rows(tmp_path):
    root = build_checkout(tmp_path / "SLM-Lab")
    benchmarks = root / "docs" / "BENCHMARKS.md"
    text = benchmarks.read_text(encoding="utf-8")
    row = "| PPO | ✅ | 498.94 | [slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml]"
    assert row in text
    benchmarks.write_text(text.replace(row, row.replace("| PPO |", "| DQN |"), 1))
    with pytest.raises(BenchError, match=r"\.label: 'DQN' is also the label of"):
        build_matrix(load_config({"checkout": {"root": str(root)}}))


def test_good_values_pass_and_keep_their_form():
    config = demo_with(_set_row(sets={"env": "ALE/Pong-v5", "gamma": 0.99, "n": 3e5}))
    config["envs"]["ALE/Pong-v5"] = config["envs"].pop("CartPole-v1")
    matrix = build_matrix(load_config(config))
    cell = matrix.cell("Pong-v5", "ppo")
    assert cell.sets == {
        "env": "ALE/Pong-v5",
        "gamma": "0.99",
        "n": "300000",
        "max_frame": "200000",
    }


def test_a_row_budget_runs_the_row_at_its_frames():
    config = load_config(demo_with(_set_row(max_frame="1e5")))
    cell = build_matrix(config).cell("CartPole-v1", "ppo")
    assert cell.sets["max_frame"] == "100000"
    assert cell.settings.max_frame == 100000
    assert build_matrix(config).cell("CartPole-v1", "dqn").sets["max_frame"] == "200000"


def test_new_keys_have_their_defaults():
    config = load_config(copy.deepcopy(DEMO))
    assert config["status_rule"] == "legend"
    assert config["seed"] is None
    assert load_config(demo_with(lambda c: c.update(seed=7)))["seed"] == 7
