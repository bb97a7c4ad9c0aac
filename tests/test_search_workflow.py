"""A real search in the graph: train, search the cell that misses its target, apply, retrain plan.

Embedded runner at a tiny budget (CartPole, 2e3 frames, one session, two trials).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from workflow_helpers import make_workdir, planned_jobs, snakemake

from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import read_run_folder, require_train
from slm_bench.matrix.seeds import cell_seed
from slm_bench.runners.embedded.search_trial import TrialRelay, trial_seed
from slm_bench.runners.progress import SummaryParser

TINY = Path(__file__).parent / "fixtures" / "search" / "tiny_search.yaml"
CELL = "results/CartPole-v1/ppo"


def search_config() -> dict:
    settings = {"max_frame": 2000, "num_envs": 1, "max_session": 1, "log_frequency": 500}
    ppo = {"label": "PPO", "spec_file": "specs/tiny_search.yaml", "spec_name": "ppo_tiny"}
    envs = {"CartPole-v1": {"settings": settings, "target": "> 400", "algorithms": {"ppo": ppo}}}
    return {"runner": "embedded", "store": "local", "seed": 7, "envs": envs}


@pytest.mark.slow
def test_search_failed_cell_then_apply_plans_exactly_its_retrain(tmp_path):
    workdir = make_workdir(tmp_path, search_config())
    shutil.copy(TINY, workdir / "specs" / "tiny_search.yaml")
    built = snakemake(workdir)
    assert built.returncode == 0, built.stdout[-3000:]
    table = (workdir / "results" / "BENCHMARKS.md").read_bytes()

    searched = snakemake(workdir, "search_failed")
    assert searched.returncode == 0, searched.stdout[-3000:]
    assert json.loads((workdir / "results/search/failed_cells.json").read_text()) == [
        "CartPole-v1/ppo"
    ]  # a 2e3-frame PPO misses "> 400": it is the cell to search
    search_log = (workdir / CELL / "search" / "search.log").read_text()
    # One line per finished trial, trials numbered as their folders (t0, t1).
    assert re.search(r"trial [01] done \(2 of 2\): total_reward_ma \S+ \| best so far", search_log)
    assert "Trial 1 session 0 ppo_tiny_t1_s0 [train]" in search_log  # numbered as SLM-Lab's
    for trial in (0, 1):  # the config's seed fixes each trial's sessions, as SLM-Lab numbers them
        assert f"seeds [{trial_seed(cell_seed(7, 'CartPole-v1/ppo'), trial)}]" in search_log
    with open(workdir / CELL / "search" / "trials.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    assert [row["trial"] for row in trials] == ["0", "1"]
    for row in trials:
        assert 0.9 <= float(row["agent.algorithm.gamma"]) <= 0.999
        assert 1e-4 <= float(row["agent.net.optim_spec.lr"]) <= 3e-3
        assert float(row["total_reward_ma"]) > 0 and row["folder"].endswith(f"_t{row['trial']}")
    best = json.loads((workdir / CELL / "search" / "best.json").read_text())
    scores = [float(row["total_reward_ma"]) for row in trials]
    assert best["best_single_draw"]["total_reward_ma"] == pytest.approx(max(scores), abs=1e-6)
    assert best["total_reward_ma"] == pytest.approx(scores[best["trial"]], abs=1e-6)
    # Both trials were trained again (the default top 3 of 2), one session each as the spec
    # says, on seeds no trial used; the pick is the higher fresh-seed MA, with its CI.
    assert [e["trial"] for e in best["evaluations"]] == sorted(
        (0, 1), key=lambda i: -scores[i]
    )  # best first
    trial_seeds = {s for seeds in best["seeds"]["trials"].values() for s in seeds}
    fresh = [s for seeds in best["seeds"]["evaluations"] for s in seeds]
    base = cell_seed(7, "CartPole-v1/ppo")
    assert trial_seeds == {trial_seed(base, 0), trial_seed(base, 1)}
    assert sorted(fresh) == [trial_seed(base, 2), trial_seed(base, 3)]
    assert not trial_seeds & set(fresh)
    fresh_ma = {e["trial"]: e["total_reward_ma"] for e in best["evaluations"]}
    assert best["trial"] == max(fresh_ma, key=fresh_ma.get)
    assert best["score"]["total_reward_ma"] == pytest.approx(fresh_ma[best["trial"]])
    assert best["score"]["n"] == 1 and len(best["score"]["ci"]) == 2
    assert best["chosen_by"].startswith("highest mean final MA over the fresh-seed sessions")
    assert "re-evaluating the 2 best trials" in search_log
    assert best["budget"] == {
        "dimensions": 2, "trials_planned": 2, "trials_run": 2, "trials_with_score": 2,
        "rule_budget": 8,
    }  # fmt: skip
    patch = (workdir / CELL / "search" / "spec.patch").read_text()
    assert patch.startswith("--- a/specs/tiny_search.yaml\n+++ b/specs/tiny_search.yaml\n")
    added = [line for line in patch.splitlines() if line.startswith("+") and "+++" not in line]
    removed = [line for line in patch.splitlines() if line.startswith("-") and "---" not in line]
    assert sorted(line.split(":")[0].strip("+ ") for line in added) == ["gamma", "lr"]
    assert [line.split(":")[0].strip("- ") for line in removed] == ["lr"]  # set in place
    assert (workdir / "results" / "BENCHMARKS.md").read_bytes() == table  # search never enters it

    # The search folder is refused by the table stages, with one line.
    folder = workdir / CELL / "search" / "work" / "data" / best["search_folder"]
    with pytest.raises(BenchError) as refused:
        require_train(read_run_folder(folder))
    assert "is a search run" in str(refused.value) and "\n" not in str(refused.value)

    spec_before = (workdir / "specs" / "tiny_search.yaml").read_text()
    applied = snakemake(workdir, f"{CELL}/search/applied.json")
    assert applied.returncode == 0, applied.stdout[-3000:]
    spec_after = (workdir / "specs" / "tiny_search.yaml").read_text()
    assert spec_after != spec_before and "${max_frame}" in spec_after
    plan = snakemake(workdir, "-n")
    assert plan.returncode == 0, plan.stdout
    jobs = planned_jobs(plan.stdout)
    assert {"validate_spec", "run_cell", "write_row", "plot_env", "write_benchmarks"} <= set(jobs)
    assert all(count == 1 for count in jobs.values()), jobs
    assert not any("search" in rule for rule in jobs), jobs


def test_parallel_trials_reach_the_log_as_whole_records_numbered_by_trial():
    """Two trials' summaries arriving line by line, interleaved: each reaches the search log as
    one piece, renamed to its trial, so a reader never pairs one trial's frame with another's MA."""
    written: list[str] = []
    first, second = TrialRelay(1, written.append), TrialRelay(2, written.append)

    def summary(ma: str, frame: str) -> list[str]:
        return [
            "\x1b[32m2026-11-29 23:43:49\x1b[0m | INFO | PID:7 | slm_lab.agent:log_summary |"
            " \x1b[1mTrial 0 session 0 ppo_tiny_t0_s0 [train]\n",  # coloured, as the console writes
            f"total_reward:1    total_reward_ma:{ma}  loss:0.5\n",
            f"frame:{frame}    wall_t:18\n",
        ]

    for line_a, line_b in zip(
        summary("11.0", "1.00e+03"), summary("-22.0", "2.00e+03"), strict=True
    ):
        first.feed(line_a)
        second.feed(line_b)
    first.flush()
    second.flush()

    assert len(written) == 2
    assert written[0].startswith("\x1b[32m2026")
    assert "Trial 1 session 0 ppo_tiny_t1_s0" in written[0]
    assert "total_reward_ma:11.0" in written[0] and "frame:1.00e+03" in written[0]
    assert "Trial 2 session 0 ppo_tiny_t2_s0" in written[1] and "ma:-22.0" in written[1]
    parser = SummaryParser()
    parsed = [result for record in written for line in record.splitlines() if
              (result := parser.feed(line))]  # fmt: skip
    assert [(fields["frame"], fields["total_reward_ma"]) for _, fields in parsed] == [
        (1000.0, 11.0), (2000.0, -22.0)
    ]  # fmt: skip
