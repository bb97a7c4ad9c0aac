"""A search block is checked before any trial: every searched key is one the spec has or
SLM-Lab reads, and none is a key the cell sets (env id, Settings line). A spec.patch never
writes those either."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from workflow_helpers import error_lines, make_workdir, snakemake

from slm_bench.errors import BenchError
from slm_bench.formats.spec import resolve_spec
from slm_bench.formats.spec_keys import bundled, extract
from slm_bench.search.patch import write_values
from slm_bench.search.space import read_space

TINY = Path(__file__).parent / "fixtures" / "search" / "tiny_search.yaml"
SETS = {"max_frame": "2000"}
SLM_LAB_SRC = Path(
    os.environ.get("SLM_BENCH_SLM_LAB_SRC")
    or Path(__file__).resolve().parents[2] / "shared" / "slm-lab"
)
# spec name -> (searched key, its arguments, what the one line must say)
REFUSED = {
    "typo": ("agent.algorithm.gama__uniform", "[0.9, 0.99]", "not in the spec"),
    "nothere": ("agent.nothere.x__uniform", "[0.1, 0.2]", "not in the spec"),
    "max_frame": ("env.max_frame__randint", "[100, 50000]", "the Settings line's max_frame"),
    "max_session": ("meta.max_session__choice", "[1, 8]", "the Settings line's max_session"),
    "env_name": ("env.name__choice", "[CartPole-v1, Acrobot-v1]", "the cell's env id"),
}


def spec_text(searches: dict[str, tuple[str, str]]) -> str:
    """tiny_search.yaml with one copy of ``ppo_tiny`` per entry, each searching only its key."""
    text = TINY.read_text()
    head, body = text.split("ppo_tiny:\n", 1)
    body = body.split("  search:\n", 1)[0]
    specs = [
        f"{name}:\n{body}  search:\n    {key}: {args}\n" for name, (key, args) in searches.items()
    ]
    return head + "\n".join(specs)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    good = {"good": ("agent.algorithm.gamma__uniform", "[0.9, 0.99]")}
    path = tmp_path / "keys.yaml"
    path.write_text(spec_text({**good, **{n: (k, a) for n, (k, a, _) in REFUSED.items()}}))
    return path


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_bad_searched_key_is_one_line_naming_spec_key_and_why(spec_file, name):
    key, _, why = REFUSED[name]
    with pytest.raises(BenchError) as error:
        read_space(resolve_spec(spec_file, name, SETS), f"specs/keys.yaml: {name}")
    message = str(error.value)
    assert message.startswith(f"specs/keys.yaml: {name}: search.{key}: ") and why in message
    assert "\n" not in message


def test_keys_slm_lab_reads_with_a_default_are_searchable_though_the_spec_leaves_them_out(
    spec_file,
):
    """PPO reads clip_vloss and MLPNet reads layer_norm, both defaulted: a search may set them.
    A key no class of this agent reads (SAC's alpha_lr on PPO) is refused."""
    spec = resolve_spec(spec_file, "good", SETS)
    assert (
        "clip_vloss" not in spec["agent"]["algorithm"] and "layer_norm" not in spec["agent"]["net"]
    )
    spec["search"] = {
        "agent.algorithm.clip_vloss__choice": [True, False],
        "agent.net.layer_norm__choice": [True, False],
        "agent.algorithm.lam__uniform": [0.9, 0.99],  # in the spec
    }
    assert len(read_space(spec, "s").dimensions) == 3
    spec["search"] = {"agent.algorithm.alpha_lr__loguniform": [1e-4, 1e-3]}
    with pytest.raises(BenchError, match="alpha_lr is not in the spec"):
        read_space(spec, "s")
    spec["search"] = {"env__choice": [{"name": "Acrobot-v1"}]}  # a whole block holding env.name
    with pytest.raises(BenchError, match="env.name is set by the cell's env id"):
        read_space(spec, "s")


@pytest.mark.parametrize(
    "path", ["env.max_frame", "env.name", "env.num_envs", "meta.max_session", "meta.log_frequency"]
)
def test_a_spec_patch_never_writes_a_key_the_cell_sets(spec_file, path):
    text = spec_file.read_text()
    with pytest.raises(BenchError) as error:
        write_values(text, spec_file, "specs/keys.yaml", "good", {path: 3}, SETS)
    assert f"specs/keys.yaml: good: {path}: " in str(error.value)
    assert "never writes it" in str(error.value) and spec_file.read_text() == text


def test_the_bundled_keys_are_what_slm_labs_source_reads():
    package = SLM_LAB_SRC / "slm_lab"
    if not (package / "agent").is_dir():
        pytest.skip(f"no SLM-Lab source at {SLM_LAB_SRC} (set SLM_BENCH_SLM_LAB_SRC)")
    assert extract(package) == bundled()
    assert "minibatch_size" in bundled()["PPO"]["algorithm"]  # defaulted in PPO, searched often


def test_bad_searched_keys_fail_their_cells_before_any_trial_in_a_real_build(tmp_path, spec_file):
    """Five cells, one per refused key, built with --keep-going: non-zero exit, one line per
    cell naming the spec file, spec name and key; no best.json, no spec.patch, no trial."""
    settings = {"max_frame": 2000, "num_envs": 1, "max_session": 1, "log_frequency": 500}
    algorithms = {
        name: {"label": f"PPO {name}", "spec_file": "specs/keys.yaml", "spec_name": name}
        for name in REFUSED
    }
    envs = {"CartPole-v1": {"settings": settings, "target": "> 400", "algorithms": algorithms}}
    workdir = make_workdir(tmp_path / "w", {"runner": "embedded", "store": "local", "envs": envs})
    shutil.copy(spec_file, workdir / "specs" / "keys.yaml")
    before = (workdir / "specs" / "keys.yaml").read_bytes()
    targets = [f"results/CartPole-v1/{name}/search/best.json" for name in REFUSED]
    result = snakemake(workdir, "--keep-going", *targets)
    assert result.returncode != 0, result.stdout[-3000:]
    errors = error_lines(result.stdout)
    assert len(errors) == len(REFUSED), errors
    for name, (key, _, why) in REFUSED.items():
        line = f"error: specs/keys.yaml: {name}: search.{key}: "
        assert [e for e in errors if e.startswith(line) and why in e], (name, errors)
        search = workdir / "results" / "CartPole-v1" / name / "search"
        assert not (search / "best.json").exists() and not (search / "spec.patch").exists()
        assert not (search / "work").exists()  # refused before the runner was asked for a trial
    assert (workdir / "specs" / "keys.yaml").read_bytes() == before
