"""Errors raised inside jobs name the config's real source, as the plan's do: the --configfile
that set the bad value, --config, else config.yaml. Real Snakemake runs: the plan accepts the
value (the schema has no rule for it), the job that reads it fails with one line."""

from __future__ import annotations

import json

import yaml
from workflow_helpers import make_workdir, snakemake, tiny_config

from slm_bench.config_source import ConfigSource, config_source

CELL = "results/CartPole-v1/ppo"


def one_cell(**top) -> dict:
    config = tiny_config(**top)
    algorithms = config["envs"]["CartPole-v1"]["algorithms"]
    config["envs"]["CartPole-v1"]["algorithms"] = {"ppo": algorithms["ppo"]}
    return config


def bad_repo() -> dict:
    """A config the plan accepts whose hf.dev_repo is no repo id: the run_cell job refuses it."""
    return one_cell(store="hf", hf={"dev_repo": "benchmark"})


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def run_cell(workdir, *args: str):
    return snakemake(workdir, "--keep-going", f"{CELL}/run.json", *args)


def assert_failed_naming(result, workdir, expected: str) -> None:
    """One error line, naming ``expected``; nothing trained; what ran before it kept."""
    assert result.returncode != 0
    lines = error_lines(result.stdout)
    assert len(lines) == 1, result.stdout[-3000:]
    assert lines[0].startswith(f"error: {expected}"), lines
    assert "Traceback" not in result.stdout
    cell = workdir / CELL
    record = json.loads((cell / "failure.json").read_text())
    assert record["rule"] == "run_cell" and record["error"].startswith(expected)
    assert (cell / "spec.json").is_file()  # validate_spec's output stays
    assert not (cell / "run.json").exists()
    assert not (cell / "work" / "data").exists()  # refused before training, not after


def test_a_job_names_the_configfile_that_set_the_bad_value(tmp_path):
    workdir = make_workdir(tmp_path / "work", one_cell())  # config.yaml itself is fine
    (workdir / "other.yaml").write_text(yaml.safe_dump(bad_repo()))
    kept = workdir / "results" / "BENCHMARKS.md"
    kept.parent.mkdir()
    kept.write_text("a previous table\n")

    result = run_cell(workdir, "--configfile=other.yaml")

    expected = "other.yaml: hf.dev_repo: 'benchmark' is not a repo id (expected owner/name)"
    assert_failed_naming(result, workdir, expected)
    assert "config.yaml: hf" not in result.stdout
    assert kept.read_text() == "a previous table\n"


def test_a_job_names_config_yaml_by_default_and_the_command_line_when_it_set_the_value(
    tmp_path,
):
    workdir = make_workdir(tmp_path / "work", bad_repo())

    result = run_cell(workdir)

    expected = "config.yaml: hf.dev_repo: 'benchmark' is not a repo id (expected owner/name)"
    assert_failed_naming(result, workdir, expected)

    (workdir / "config.yaml").write_text(yaml.safe_dump(one_cell(store="hf")))
    result = run_cell(workdir, "--config", "hf={dev_repo: from-the-command-line}")

    expected = "--config: hf.dev_repo: 'from-the-command-line' is not a repo id"
    assert_failed_naming(result, workdir, expected)


def test_the_typed_config_names_each_key_by_the_layer_that_set_it(tmp_path):
    (tmp_path / "a.yaml").write_text("time_limit: 1h\nhf: {dev_repo: a/b}\n")
    (tmp_path / "b.yaml").write_text("hf: {endpoint: 'http://x'}\n")
    source = config_source(["a.yaml", "b.yaml"], tmp_path, {"seed": 3})

    assert source == "a.yaml, b.yaml"
    assert source.where("time_limit") == "a.yaml: time_limit"
    assert source.where("hf", "dev_repo") == "a.yaml: hf.dev_repo"
    assert source.where("hf", "endpoint") == "b.yaml: hf.endpoint"
    assert source.where("seed") == "--config: seed"
    assert source.where("runner") == "a.yaml, b.yaml: runner"  # a default: no layer set it
    assert ConfigSource("my.yaml").where("hf", "dev_repo") == "my.yaml: hf.dev_repo"
