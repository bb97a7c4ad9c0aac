"""Fixed per-cell seeds: derived from the config's seed and the cell, passed to the embedded
runner, part of the run's params (a new seed re-plans the cell), and reproducing the scores."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from seeded_runs import CELL, pulled_folder, seeded_builds, seeded_config, session_column
from workflow_helpers import planned_jobs, snakemake

from slm_bench.cli import main as cli_main
from slm_bench.config_model import BenchConfig
from slm_bench.errors import BenchError
from slm_bench.matrix.config import Cell, build_matrix, load_config
from slm_bench.matrix.seeds import cell_seed
from slm_bench.runners import RunRequest
from slm_bench.runners.process import embedded_runner, slm_lab_runner


def matrix(seed):
    config = seeded_config(seed)
    load_config(config)
    return build_matrix(config), config


def test_cell_seed_is_fixed_per_cell_and_differs_between_cells():
    assert cell_seed(7, CELL) == cell_seed(7, CELL)
    assert cell_seed(7, CELL) != cell_seed(7, "CartPole-v1/dqn")
    assert cell_seed(7, CELL) != cell_seed(8, CELL)
    assert cell_seed(None, CELL) is None
    assert 0 <= cell_seed(123456789, CELL) < 2**31


def test_the_seed_is_a_run_param_only_when_set():
    seeded, config = matrix(7)
    cell = seeded.cell("CartPole-v1", "ppo")
    params = cell.as_params(run_only=True)
    assert params["seed"] == cell_seed(7, CELL)
    assert (
        Cell.from_params(params, BenchConfig.of(config)).seed == params["seed"]
    )  # what the job runs with
    unseeded, _ = matrix(None)
    assert "seed" not in unseeded.cell("CartPole-v1", "ppo").as_params(run_only=True)


def request(tmp_path: Path, seed: int | None) -> RunRequest:
    return RunRequest(
        spec_file="s.yaml",
        spec_name="ppo_cartpole",
        sets={"max_frame": "2000"},
        workdir=tmp_path,
        log_path=tmp_path / "log",
        journal_path=tmp_path / "journal.json",
        time_limit_s=60,
        seed=seed,
    )


def test_embedded_argv_passes_the_seed_before_the_double_dash(tmp_path):
    argv = embedded_runner({"workers": 2}).argv(request(tmp_path, 42), "s.yaml")
    assert argv[argv.index("--") - 2 : argv.index("--")] == ["--seed", "42"]
    assert argv[-4:] == ["--", "s.yaml", "ppo_cartpole", "train"]
    assert "--seed" not in embedded_runner({}).argv(request(tmp_path, None), "s.yaml")
    # `slm-lab run` has no seed option: SLM-Lab draws its own seeds
    assert "--seed" not in slm_lab_runner({}).argv(replace(request(tmp_path, 42)), "s.yaml")


def test_cli_refuses_a_negative_seed(capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["run", "--seed", "-1", "--", "s.yaml", "x", "train"])
    assert stop.value.code == 2
    assert "--seed expects an integer" in capsys.readouterr().err


@pytest.mark.slow
def test_two_seeded_builds_give_identical_scores(tmp_path_factory):
    first, second = seeded_builds(tmp_path_factory)
    paths = [w / "results" / CELL / "metrics.json" for w in (first, second)]
    metrics = [json.loads(path.read_text()) for path in paths]
    assert metrics[0]["total_reward_ma"] == metrics[1]["total_reward_ma"]
    assert metrics[0]["provenance"]["seeds"] == metrics[1]["provenance"]["seeds"]
    folders = [pulled_folder(w) for w in (first, second)]
    for session in (0, 1):
        columns = [session_column(folder, session) for folder in folders]
        assert len(columns[0]) >= 4  # a checkpoint every 500 frames of 2000
        assert columns[0] == columns[1]
    # the sessions themselves differ: seeds differ per session
    assert session_column(folders[0], 0) != session_column(folders[0], 1)


@pytest.mark.slow
def test_a_new_seed_replans_the_run(tmp_path_factory):
    workdir = seeded_builds(tmp_path_factory)[0]
    same = snakemake(workdir, "-n", f"results/{CELL}/row.json")
    assert "run_cell" not in planned_jobs(same.stdout), same.stdout[-2000:]
    changed = snakemake(workdir, "-n", f"results/{CELL}/row.json", "--config", "seed=8")
    assert planned_jobs(changed.stdout).get("run_cell") == 1, changed.stdout[-2000:]


def test_a_seeded_remote_embedded_task_passes_the_seed(tmp_path):
    from slm_bench.runners.dstack import DstackRunner

    repo = Path(__file__).resolve().parents[1]
    store = {"name": "hf", "dev_repo": "SLM-Lab/benchmark-dev"}
    runner = DstackRunner({"store": store, "spec_root": str(repo)})
    seeded = replace(request(tmp_path, 42), spec_file="specs/ppo_classic.yaml", cell=CELL)
    command = runner.plan_task(seeded).config["commands"][1]
    assert command.startswith("cd /workflow && slm-bench run --seed 42 ${SPEC_VARS} ")
    unseeded = replace(seeded, seed=None)
    assert "--seed" not in runner.plan_task(unseeded).config["commands"][1]
    search = replace(seeded, mode="search")  # a search's trials draw their own seeds
    assert "--seed" not in runner.plan_task(search).config["commands"][1]


def test_a_new_seed_is_new_remote_work(tmp_path):
    from slm_bench.steps.cell import run_fingerprint

    spec_json = tmp_path / "spec.json"
    spec_json.write_text('{"spec": {}}')
    unseeded = run_fingerprint(spec_json, None)
    assert unseeded == hashlib.sha256(spec_json.read_bytes()).hexdigest()[:16]  # as before
    assert len({unseeded, run_fingerprint(spec_json, 7), run_fingerprint(spec_json, 8)}) == 3


def test_the_slm_lab_runner_says_the_seed_is_not_applied(tmp_path, capfd):
    import sys

    from slm_bench.runners.process import ProcessRunner

    runner = ProcessRunner(name="slm-lab", command=[sys.executable, "-c", "print('ran')"])
    with pytest.raises(BenchError, match="no data folder"):
        runner.run(replace(request(tmp_path, 42), cell=CELL))
    assert f"[{CELL}] note: config seed not applied" in capfd.readouterr().err
