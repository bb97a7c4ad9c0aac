import json
import os
from pathlib import Path

import pytest
import yaml

from slm_bench.errors import BenchError
from slm_bench.formats import naming, spec
from slm_bench.formats.settings import Range, Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "specs"
TEMPLATED_YAML = FIXTURES / "templated.yaml"
TEMPLATED_JSON = FIXTURES / "templated.json"
SLM_LAB = Path(__file__).resolve().parent / "fixtures" / "slm-lab"
SETS = {"env": "ALE/Pong-v5", "max_frame": "3e6"}


def real_specs_dir() -> Path:
    folder = SLM_LAB / "specs"
    return folder


# --- substitute ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3e6", "3000000"), ("2e5", "200000"), (200000, "200000"), (2e5, "200000"), ("0.5", "0.5")],
)
def test_substitute_numbers_lose_quotes_and_become_whole(value, expected):
    text = '{"a": "${n}", "b": ${n}, "c": "x${n}y"}'
    out = spec.substitute(text, {"n": value})
    assert out == f'{{"a": {expected}, "b": {expected}, "c": "x{expected}y"}}'


def test_substitute_keeps_quotes_for_text_values_in_json_and_yaml():
    json_text = '{"name": "${env}"}'
    yaml_text = 'name: "${env}"\nother: ${env}\n'
    assert json.loads(spec.substitute(json_text, SETS)) == {"name": "ALE/Pong-v5"}
    assert yaml.safe_load(spec.substitute(yaml_text, SETS)) == {
        "name": "ALE/Pong-v5",
        "other": "ALE/Pong-v5",
    }


def test_substitute_leaves_unknown_placeholders():
    assert spec.substitute("a: ${other}", SETS) == "a: ${other}"


def test_whole_number_in_yaml_parses_as_int():
    # YAML reads a bare 3e6 as text; the whole-number form is what makes it an int.
    parsed = yaml.safe_load(spec.substitute('max_frame: "${max_frame}"', SETS))
    assert parsed == {"max_frame": 3000000}


# --- loading ------------------------------------------------------------------------------------


def test_load_yaml_merges_anchors_and_skips_underscore_keys():
    specs = spec.load_spec_file(TEMPLATED_YAML, SETS)
    assert list(specs) == ["ppo_templated", "ppo_hardcoded", "ddqn_per_templated"]
    assert specs["ppo_templated"]["meta"]["log_frequency"] == 500
    assert specs["ppo_templated"]["env"]["name"] == "ALE/Pong-v5"
    assert specs["ppo_templated"]["agent"]["net"]["lr_scheduler_spec"]["frame"] == 3000000


def test_spec_names_lists_runnable_specs_only():
    assert spec.spec_names(TEMPLATED_JSON) == ["a2c_templated", "sac_float_frames"]


def test_malformed_yaml_names_file_line_and_column():
    with pytest.raises(BenchError) as info:
        spec.load_spec_file(FIXTURES / "broken.yaml")
    message = str(info.value)
    assert message.startswith(f"{FIXTURES / 'broken.yaml'}: not valid YAML (line 4, column 4): ")
    assert "\n" not in message


def test_malformed_json_names_file_line_and_column():
    with pytest.raises(BenchError, match=r"broken\.json: not valid JSON \(line 3, column 29\)"):
        spec.load_spec_file(FIXTURES / "broken.json")


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(BenchError, match=f"{missing}: spec file not found"):
        spec.load_spec_file(missing)


def test_unknown_extension_is_refused(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text("x = 1\n")
    with pytest.raises(BenchError, match=r"must end in \.json, \.yaml or \.yml"):
        spec.load_spec_file(path)


# --- resolve / validate -------------------------------------------------------------------------


def test_resolve_spec_substitutes_and_validates():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", SETS)
    assert body["env"] == {
        "name": "ALE/Pong-v5",
        "num_envs": 4,
        "max_t": None,
        "max_frame": 3000000,
    }


def test_resolve_spec_returns_an_independent_copy():
    # YAML anchors share objects; a caller changing one body must not change another.
    first = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", SETS)
    first["meta"]["max_session"] = 99
    again = spec.resolve_spec(TEMPLATED_YAML, "ddqn_per_templated", SETS)
    assert again["meta"]["max_session"] == 4


def test_resolve_spec_casts_whole_float_max_frame():
    body = spec.resolve_spec(TEMPLATED_JSON, "sac_float_frames")
    assert body["env"]["max_frame"] == 300000
    assert isinstance(body["env"]["max_frame"], int)


def test_unknown_spec_name_lists_the_names():
    with pytest.raises(BenchError) as info:
        spec.resolve_spec(TEMPLATED_JSON, "foo")
    assert str(info.value) == (
        f"{TEMPLATED_JSON}: no spec named 'foo' "
        "(specs in this file: a2c_templated, sac_float_frames)"
    )


def test_leftover_placeholder_names_its_path():
    with pytest.raises(BenchError) as info:
        spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", {"env": "CartPole-v1"})
    assert str(info.value) == (
        f"{TEMPLATED_YAML}: ppo_templated: agent.net.lr_scheduler_spec.frame still holds "
        "${max_frame}; pass -s max_frame=..."
    )
    with pytest.raises(BenchError, match=r"a2c_templated: env\.name still holds \$\{env\}"):
        spec.resolve_spec(TEMPLATED_JSON, "a2c_templated", {"max_frame": 100})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "bare_exponent",
            "bare_exponent: env.max_frame: expected integer, got '4e6' "
            "(YAML reads a bare 4e6 as text; write 4000000)",
        ),
        ("no_algorithm_name", "no_algorithm_name: agent.algorithm.name is missing"),
        ("float_sessions", "float_sessions: meta.max_session: expected integer, got 4.5"),
        ("no_meta", "no_meta: meta is missing"),
    ],
)
def test_schema_errors_are_one_line_with_dotted_path(name, expected):
    with pytest.raises(BenchError) as info:
        spec.resolve_spec(FIXTURES / "invalid.yaml", name)
    assert str(info.value).startswith(f"{FIXTURES / 'invalid.yaml'}: {expected}")


def test_validate_spec_accepts_null_max_trial_and_rejects_text():
    body = spec.resolve_spec(TEMPLATED_JSON, "sac_float_frames")
    spec.check_spec_schema(body, "x")
    body["meta"]["max_trial"] = "many"
    with pytest.raises(BenchError, match=r"^x: meta\.max_trial: expected integer or null"):
        spec.check_spec_schema(body, "x")


def test_every_real_spec_resolves_and_validates():
    folder = real_specs_dir()
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".json", ".yaml"))
    assert len(files) >= 10
    count = 0
    for path in files:
        for name in spec.spec_names(path):
            body = spec.resolve_spec(path, name, {"env": "Hopper-v5", "max_frame": "4e6"})
            assert isinstance(body["env"]["max_frame"], int)
            count += 1
    assert count >= 40


def test_real_json_and_yaml_twins_resolve_alike():
    folder = real_specs_dir() / "benchmark" / "ppo"
    from_json = spec.resolve_spec(folder / "ppo_cartpole.json", "ppo_cartpole")
    from_yaml = spec.resolve_spec(folder / "ppo_cartpole.yaml", "ppo_cartpole")
    assert from_json == from_yaml


# --- settings and the hard-coded max_frame rule -------------------------------------------------


def test_spec_settings_reads_the_four_fields():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", SETS)
    assert spec.spec_settings(body) == {
        "max_frame": 3000000,
        "num_envs": 4,
        "max_session": 4,
        "log_frequency": 500,
    }
    # What SLM-Lab runs with when a spec leaves a value out (make_env, the env's log_frequency).
    assert spec.spec_settings({"env": {}, "meta": {}}) == {
        "max_frame": None,
        "num_envs": 1,
        "max_session": None,
        "log_frequency": 10000,
    }


def test_a_spec_without_num_envs_resolves_and_runs_one_env(tmp_path):
    """SLM-Lab accepts real specs without env.num_envs (dqn_mountaincar): it runs 1 env."""
    path = tmp_path / "dqn_mountaincar.json"
    body = {
        "agent": {"name": "DQN", "algorithm": {"name": "DQN"}},
        "env": {"name": "MountainCar-v0", "max_t": None, "max_frame": "${max_frame}"},
        "meta": {"distributed": False, "max_session": 4, "max_trial": 1},
    }
    path.write_text(json.dumps({"dqn_mountaincar": body}))
    resolved = spec.resolve_spec(path, "dqn_mountaincar", {"max_frame": "1e5"})
    assert "num_envs" not in resolved["env"]  # resolved as SLM-Lab's spec_util returns it
    settings = Settings(max_frame=100000, num_envs=1, max_session=4, log_frequency=10000)
    assert spec.audit_spec(resolved, settings, hardcoded=False) == []
    with pytest.raises(BenchError, match="num_envs: spec has 1, Settings line says 4"):
        spec.audit_spec(resolved, Settings(max_frame=100000, num_envs=4), hardcoded=False)


def test_env_name_must_be_the_rows_env():
    cartpole = {"env": {"name": "CartPole-v1"}}
    spec.check_env_name(cartpole, "CartPole-v1")
    with pytest.raises(BenchError) as info:
        spec.check_env_name(cartpole, "ALE/Pong-v5", "ppo.yaml: ppo_cartpole")
    assert str(info.value).startswith(
        "ppo.yaml: ppo_cartpole: env.name is 'CartPole-v1' but the row is for 'ALE/Pong-v5'"
    )
    with pytest.raises(BenchError, match="row is for 'CartPole-v0'"):  # other episode length
        spec.check_env_name(cartpole, "CartPole-v0")
    # SLM-Lab's LunarLanderContinuous-v3 rows: LunarLander-v3 with continuous=True is that env.
    lunar = {"env": {"name": "LunarLander-v3", "continuous": True, "num_envs": 8}}
    spec.check_env_name(lunar, "LunarLanderContinuous-v3")
    with pytest.raises(BenchError, match="row is for 'LunarLanderContinuous-v3'"):
        spec.check_env_name({"env": {"name": "LunarLander-v3"}}, "LunarLanderContinuous-v3")


def test_audit_refuses_a_spec_for_another_env():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", SETS)  # ALE/Pong-v5
    assert spec.audit_spec(body, SETTINGS, hardcoded=False, env_id="ALE/Pong-v5") == []
    with pytest.raises(BenchError, match="env.name is 'ALE/Pong-v5' but the row is for 'Foo'"):
        spec.audit_spec(body, SETTINGS, hardcoded=False, env_id="Foo")


def slm_lab_source() -> Path:
    """SLM-Lab's whole source tree (env SLM_BENCH_SLM_LAB_SRC, else ../shared/slm-lab)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "slm-lab"
    root = Path(os.environ.get("SLM_BENCH_SLM_LAB_SRC") or default)
    if not (root / "slm_lab" / "spec").is_dir():
        pytest.skip(f"SLM-Lab's source tree is not at {root} (set SLM_BENCH_SLM_LAB_SRC)")
    return root


def test_every_benchmark_spec_in_slm_labs_source_loads_and_resolves():
    """All spec files under slm_lab/spec/benchmark*: every spec name resolves and validates,
    with its placeholders filled as a benchmark row fills them."""
    spec_dir = slm_lab_source() / "slm_lab" / "spec"
    files = sorted(p for d in spec_dir.glob("benchmark*") for p in d.rglob("*") if p.is_file())
    assert len(files) == 119
    names = 0
    for path in files:
        for name in spec.spec_names(path):
            body = spec.raw_spec(path, name)
            sets = {
                key: "Hopper-v5" if key == "env" else "100000" for key in spec.placeholders(body)
            }
            resolved = spec.resolve_spec(path, name, sets)
            assert spec.spec_settings(resolved)["num_envs"] >= 1
            names += 1
    assert names == 243


def test_max_frame_is_hardcoded_follows_the_placeholder_through_anchors():
    assert not spec.max_frame_is_hardcoded(TEMPLATED_YAML, "ppo_templated", {"env": "X-v1"})
    assert spec.max_frame_is_hardcoded(TEMPLATED_YAML, "ppo_hardcoded", {"env": "X-v1"})
    assert spec.max_frame_is_hardcoded(TEMPLATED_JSON, "sac_float_frames")


def test_max_frame_is_hardcoded_on_real_mujoco_specs():
    path = real_specs_dir() / "benchmark_arc" / "ppo" / "ppo_mujoco_arc.yaml"
    assert not spec.max_frame_is_hardcoded(path, "ppo_hopper_arc", {"env": "Hopper-v5"})
    assert spec.max_frame_is_hardcoded(path, "ppo_mountaincar_arc")


SETTINGS = Settings(max_frame=3000000, num_envs=4, max_session=4, log_frequency=500)


def test_audit_passes_a_matching_templated_spec():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", SETS)
    assert spec.audit_spec(body, SETTINGS, hardcoded=False) == []


def test_audit_lists_every_mismatching_field():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", {**SETS, "max_frame": 300000})
    body["meta"]["max_session"] = 2
    settings = Settings(max_frame=200000, num_envs=4, max_session=4, log_frequency=500)
    with pytest.raises(BenchError) as info:
        spec.audit_spec(body, settings, hardcoded=False, source="specs/x.yaml: ppo_templated")
    assert str(info.value) == (
        "specs/x.yaml: ppo_templated: spec does not match the Settings line: "
        "max_frame: spec has 300000, Settings line says 2e5; "
        "max_session: spec has 2, Settings line says 4"
    )


def test_audit_hardcoded_max_frame_error_and_warn():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_hardcoded", {"env": "X"})
    settings = Settings(max_frame=200000, num_envs=4, max_session=4, log_frequency=500)
    with pytest.raises(BenchError, match=r"env\.max_frame is hard-coded \(200000\); use \$\{max"):
        spec.audit_spec(body, settings, hardcoded=True, source="s")
    warnings = spec.audit_spec(body, settings, hardcoded=True, policy="warn", source="s")
    assert warnings == [
        "s: env.max_frame is hard-coded (200000); use ${max_frame} so the Settings line owns it"
    ]
    differing = Settings(max_frame=300000)
    with pytest.raises(BenchError, match="spec has 200000, Settings line says 3e5"):
        spec.audit_spec(body, differing, hardcoded=True, policy="warn")


def test_audit_range_and_unknown_policy():
    body = spec.resolve_spec(TEMPLATED_YAML, "ppo_templated", SETS)
    assert spec.audit_spec(body, Settings(max_frame=Range(1000000, 4000000)), False) == []
    with pytest.raises(BenchError, match="audit policy 'loose'"):
        spec.audit_spec(body, SETTINGS, False, policy="loose")


# --- names, paths and labels --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "short"),
    [
        ("ALE/Pong-v5", "pong"),
        ("HalfCheetah-v5", "halfcheetah"),
        ("playground/CheetahRun", "cheetahrun"),
        ("CartPole-v1", "cartpole"),
    ],
)
def test_env_short(env_id, short):
    assert naming.env_short(env_id) == short


def test_run_name():
    assert (
        naming.run_name("ppo_mujoco_arc", {"env": "HalfCheetah-v5"}) == "ppo_mujoco_arc_halfcheetah"
    )
    assert naming.run_name("ppo_cartpole_arc", {"max_frame": 5}) == "ppo_cartpole_arc"
    assert naming.run_name("ppo_cartpole_arc", None) == "ppo_cartpole_arc"


def test_locate_spec_file_in_an_slm_lab_checkout(tmp_path):
    (tmp_path / "slm_lab" / "spec").mkdir(parents=True)
    expected = tmp_path / "slm_lab" / "spec" / "benchmark_arc" / "ppo" / "ppo.yaml"
    assert spec.locate_spec_file("slm_lab/spec/benchmark_arc/ppo/ppo.yaml", tmp_path) == expected
    assert spec.locate_spec_file("benchmark_arc/ppo/ppo.yaml", tmp_path) == expected


def test_locate_spec_file_outside_slm_lab(tmp_path):
    assert spec.locate_spec_file("specs/ppo.yaml", tmp_path) == tmp_path / "specs" / "ppo.yaml"


@pytest.mark.parametrize(
    ("algorithm", "memory", "label"),
    [
        ("VanillaDQN", "Replay", "DQN"),
        ("DQN", "Replay", "DQN"),
        ("DoubleDQN", "PrioritizedReplay", "DDQN+PER"),
        ("DoubleDQN", "Replay", "DDQN"),
        ("ActorCritic", "OnPolicyBatchReplay", "A2C"),
        ("SoftActorCritic", "Replay", "SAC"),
        ("Reinforce", "OnPolicyReplay", "REINFORCE"),
        ("PPO", "OnPolicyBatchReplay", "PPO"),
        ("SARSA", "OnPolicyBatchReplay", "SARSA"),
        ("CrossQ", "Replay", "CrossQ"),
    ],
)
def test_algorithm_label(algorithm, memory, label):
    body = {"agent": {"algorithm": {"name": algorithm}, "memory": {"name": memory}}}
    assert naming.algorithm_label(body) == label


def test_algorithm_rank_orders_known_labels_then_unknown():
    labels = ["SAC", "Mystery", "REINFORCE", "DDQN+PER", "PPO", "DDQN"]
    ordered = sorted(labels, key=naming.algorithm_rank)
    assert ordered == ["REINFORCE", "DDQN+PER", "PPO", "SAC", "Mystery", "DDQN"]
    assert naming.algorithm_rank("CrossQ") == len(naming.ALGORITHM_ORDER) - 1
