"""Nothing silently unbuilt: what Snakemake cannot use as a wildcard value is refused at plan time,
and so is a config that names one cell twice (YAML keeps the last entry and drops the first).

Snakemake drops a job whose wildcard value ends in one piece repeated 20 or more times (its
PeriodicityDetector), prints PeriodicWildcardError, says "Nothing to be done" and exits 0. The
refusal is checked against Snakemake's own detector (a property), and through real dry runs.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from snakemake.io import PeriodicityDetector
from workflow_helpers import make_workdir, planned_jobs, planned_outputs, snakemake, tiny_config

from slm_bench.errors import BenchError
from slm_bench.matrix.config import build_matrix, check_unique_keys, load_config
from slm_bench.matrix.identifiers import ALGO_KEY, repeated_suffix

DETECTOR = PeriodicityDetector()
PIECES = st.text(alphabet="ab1-", min_size=1, max_size=4)
# Values around Snakemake's limit: a prefix, then one piece 15 to 25 times, then maybe a tail.
NEAR_PERIODIC = st.builds(
    lambda head, piece, times, tail: head + piece * times + tail,
    st.text(alphabet="xab", max_size=5),
    PIECES,
    st.integers(15, 25),
    st.sampled_from(["", "", "b", "-v1"]),
)


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(NEAR_PERIODIC, st.text(alphabet="ab", max_size=60)))
def test_the_refusal_is_exactly_snakemakes_periodic_wildcard_rule(value):
    assert (repeated_suffix(value) is not None) == (DETECTOR.is_periodic(value) is not None)


def one_cell_config(env_id: str = "CartPole-v1", algo: str = "ppo", phase: str | None = None):
    config = tiny_config()
    entry = config["envs"].pop("CartPole-v1")
    entry["algorithms"] = {algo: entry["algorithms"]["ppo"]}
    if phase is not None:
        entry["phase"] = phase
    config["envs"] = {env_id: entry}
    return config


@settings(max_examples=200, deadline=None)
@given(algo=NEAR_PERIODIC.map(lambda v: "p" + v.replace("-", "_")).filter(ALGO_KEY.fullmatch))
def test_a_planned_algorithm_key_is_one_snakemake_can_build(algo):
    try:
        matrix = build_matrix(load_config(one_cell_config(algo=algo)), "my.yaml")
    except BenchError as error:
        assert DETECTOR.is_periodic(algo) is not None, str(error)
        assert str(error).startswith("my.yaml: envs.CartPole-v1.algorithms: algorithm key: got")
        return
    for env, key in matrix.cells:
        assert DETECTOR.is_periodic(env) is None and DETECTOR.is_periodic(key) is None


CASES = {
    "algorithm key": (
        one_cell_config(algo="a" * 100),
        "config.yaml: envs.CartPole-v1.algorithms: algorithm key: got 'aaaa",
    ),
    "env id": (
        one_cell_config(env_id="CartPole-v" + "1" * 20),
        "config.yaml: envs: env id: got 'CartPole-v11111111111111111111' (expected a value that"
        " does not end in '1' repeated 20 or more times",
    ),
    "phase": (
        one_cell_config(phase="Phase " + "ab" * 20),
        "config.yaml: envs.CartPole-v1.phase: got 'Phase ababab",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_snakemake_cannot_build_is_refused_by_a_real_plan(tmp_path, case):
    """Added to a built benchmark (its table exists), such a cell was dropped by Snakemake:
    'Nothing to be done', exit 0, the old table kept. Now: one line, non-zero exit."""
    config, line_start = CASES[case]
    workdir = make_workdir(tmp_path, config)
    table = workdir / "results" / "BENCHMARKS.md"
    table.parent.mkdir()
    table.write_text("# SLM-Lab Benchmarks\n")
    result = snakemake(workdir)
    assert result.returncode != 0, result.stdout[-3000:]
    assert (
        "PeriodicWildcardError" not in result.stdout and "Nothing to be done" not in result.stdout
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("config.yaml")]
    assert len(lines) == 1 and lines[0].startswith(line_start), result.stdout[-3000:]
    assert table.read_text() == "# SLM-Lab Benchmarks\n"


def test_one_repeat_short_of_the_limit_is_planned_and_built_by_snakemake(tmp_path):
    algo = "b" + "a" * 19
    result = snakemake(make_workdir(tmp_path, one_cell_config(algo=algo)), "-n")
    assert result.returncode == 0, result.stdout[-3000:]
    assert planned_jobs(result.stdout)["write_row"] == 1
    assert f"results/CartPole-v1/{algo}/row.json" in planned_outputs(result.stdout)


def test_a_cell_written_twice_in_the_config_is_refused_not_dropped(tmp_path):
    """YAML keeps the last of two equal keys: the first PPO cell would vanish from the plan."""
    config = tiny_config()
    text = yaml.safe_dump(config, sort_keys=False)
    ppo = "      ppo:\n"
    assert text.count(ppo) == 1
    block = text[text.index(ppo) : text.index("\n", text.index("spec_name", text.index(ppo))) + 1]
    duplicated = text.replace(block, block + block.replace("label: PPO", "label: PPO2"))
    workdir = make_workdir(tmp_path, config)
    (workdir / "config.yaml").write_text(duplicated)
    first = duplicated.splitlines().index(ppo.rstrip("\n")) + 1
    second = duplicated.splitlines().index(ppo.rstrip("\n"), first) + 1
    result = snakemake(workdir, "-n")
    assert result.returncode != 0, result.stdout[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("config.yaml")]
    assert lines == [
        f"config.yaml line {second}: envs.CartPole-v1.algorithms.ppo: written twice in one"
        f" mapping (also on line {first}); YAML keeps only the last, so keep one"
    ]
    # The same cells once each: planned, every one of them.
    (workdir / "config.yaml").write_text(text)
    result = snakemake(workdir, "-n")
    assert result.returncode == 0 and planned_jobs(result.stdout)["write_row"] == 3


def test_a_json_config_with_a_key_twice_is_refused(tmp_path):
    path = tmp_path / "my.json"
    path.write_text('{"envs": {"CartPole-v1": {"algorithms": {"ppo": {}, "ppo": {}}}}}')
    with pytest.raises(BenchError, match="my.json: key 'ppo' appears twice in one object"):
        check_unique_keys(path, "my.json")
    path.write_text('{"envs": {"CartPole-v1": {"algorithms": {"ppo": {}, "a2c": {}}}}}')
    check_unique_keys(path, "my.json")  # distinct keys: nothing to say
