"""The search's pick: its best trials re-evaluated on fresh seeds, chosen by the mean of the fresh
sessions, not by the single best draw; and what best.json records of it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import tiny_config

from slm_bench.errors import BenchError
from slm_bench.runners.embedded.reevaluate import check_session_count, reevaluate
from slm_bench.search.results import (
    CHOSEN_BY_DRAW,
    CHOSEN_BY_FRESH,
    best_trial,
    read_evaluations,
    robust_choice,
)
from slm_bench.search.space import read_space

SLM_LAB_RUN = (
    Path(__file__).parent / "fixtures" / "slm-lab-runs" / "ppo_cartpole_arc_2026_11_29_185430"
)
SPEC = {
    "agent": {"net": {"optim_spec": {"lr": 1e-3}}},
    "search": {"agent.net.optim_spec.lr__loguniform": [1e-4, 1e-2]},
    "meta": {},
}
SPACE = read_space(SPEC, "toy")


def _trials(scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trial": range(len(scores)),
            "agent.net.optim_spec.lr": [1e-3 * (i + 1) for i in range(len(scores))],
            "total_reward_ma": scores,
            "folder": [f"data/s_2026_01_01_000000/s_t{i}" for i in range(len(scores))],
        }
    )


def _toy_evaluations() -> dict:
    """Acrobot as the issue saw it: trial 2's draw (-84) was its lucky one; on fresh seeds one of
    its four sessions stays at the random policy (-500), while trial 0 learns in all four."""
    return {
        "base_seed": 7,
        "trials": {
            "0": {"sessions": [-90.0, -92.0, -91.0, -93.0], "seeds": [7, 1007, 2007, 3007]},
            "1": {"sessions": [-140.0] * 4, "seeds": [100007, 101007, 102007, 103007]},
            "2": {"sessions": [-83.0, -85.0, -84.0, -84.0],
                  "seeds": [200007, 201007, 202007, 203007]},
        },
        "evaluations": [
            {"trial": 2, "run": 3, "sessions": [-83.7, -86.0, -83.9, -500.0],
             "seeds": [300007, 301007, 302007, 303007]},
            {"trial": 0, "run": 4, "sessions": [-91.0, -89.5, -92.5, -90.0],
             "seeds": [400007, 401007, 402007, 403007]},
            {"trial": 1, "run": 5, "sessions": [-150.0, -120.0, -160.0, -130.0],
             "seeds": [500007, 501007, 502007, 503007]},
        ],
    }  # fmt: skip


def test_the_robust_pick_is_not_the_best_single_draw():
    evaluations = _toy_evaluations()
    best = best_trial(_trials([-91.5, -140.0, -84.0]), SPACE, 3, "f.yaml", "a2c", evaluations)
    assert best["best_single_draw"] == {"trial": 2, "total_reward_ma": -84.0}
    assert best["trial"] == 0 and best["chosen_by"] == CHOSEN_BY_FRESH
    assert best["values"] == {"agent.net.optim_spec.lr": pytest.approx(1e-3)}
    assert best["total_reward_ma"] == -91.5  # the chosen trial's own draw, as the trials list it
    score = best["score"]
    assert score["total_reward_ma"] == pytest.approx(-90.75) and score["n"] == 4
    low, high = score["ci"]
    assert -92.5 <= low <= -90.75 <= high <= -89.5
    assert best["evaluations"] == evaluations["evaluations"]  # every evaluation, as run
    trial_seeds = {s for seeds in best["seeds"]["trials"].values() for s in seeds}
    fresh = {s for seeds in best["seeds"]["evaluations"] for s in seeds}
    assert len(fresh) == 12 and not trial_seeds & fresh


def test_ties_in_the_mean_go_to_the_narrower_interval():
    chosen = robust_choice(
        [
            {"trial": 0, "sessions": [-100.0, -60.0, -80.0, -80.0]},  # mean -80, wide
            {"trial": 1, "sessions": [-80.0, -80.0, -81.0, -79.0]},  # mean -80, narrow
        ]
    )
    assert chosen["trial"] == 1


def test_several_evaluations_of_one_trial_are_pooled_and_failures_skipped():
    chosen = robust_choice(
        [
            {"trial": 3, "sessions": [10.0, 20.0]},
            {"trial": 3, "sessions": [30.0]},
            {"trial": 4, "sessions": [], "error": "trial 6 exited with 1"},
        ]
    )
    assert chosen["trial"] == 3 and chosen["n"] == 3 and chosen["mean"] == pytest.approx(20.0)
    assert robust_choice([{"trial": 4, "sessions": [], "error": "x"}]) is None


def test_without_evaluations_the_pick_is_slm_labs_and_says_so():
    best = best_trial(_trials([-91.5, -140.0, -84.0]), SPACE, 3, "f.yaml", "a2c", None)
    assert best["trial"] == 2 and best["chosen_by"] == CHOSEN_BY_DRAW and best["score"] is None
    assert best["evaluations"] == [] and best["seeds"]["trials"] is None


def test_reevaluation_reads_each_runs_sessions_and_seeds_and_keeps_failures():
    """The launcher stands in for the subprocess: one evaluation returns a real SLM-Lab run folder
    (4 sessions), the other fails; both are recorded, the failure with its error."""
    said: list[str] = []

    def launch(run: int, body: dict) -> tuple[Path | None, str]:
        return (SLM_LAB_RUN, "") if run == 5 else (None, f"trial {run} exited with 1")

    evaluations = reevaluate([(2, {}), (0, {})], 5, launch, said.append, workers=2)
    first, second = evaluations
    assert (first.trial, first.run, len(first.sessions)) == (2, 5, 4)
    assert first.total_reward_ma == pytest.approx(sum(first.sessions) / 4)
    assert (second.trial, second.run, second.sessions, second.error) == (
        0, 6, [], "trial 6 exited with 1"
    )  # fmt: skip
    assert any(line.startswith("re-evaluation of trial 2 on fresh seeds") for line in said)
    assert "re-evaluation of trial 0 failed: trial 6 exited with 1" in said


def test_a_spec_with_100_sessions_is_refused_before_any_training():
    with pytest.raises(BenchError, match="meta.max_session 100: a search's fresh seeds need"):
        check_session_count(100, "specs/x.yaml: x")
    check_session_count(99, "specs/x.yaml: x")


def test_an_unreadable_evaluations_file_is_one_clear_error(tmp_path):
    folder = tmp_path / "s_2026_01_01_000000"
    (folder / "info").mkdir(parents=True)
    assert read_evaluations(folder) is None
    (folder / "info" / "s_evaluations.json").write_text(json.dumps({"trials": {}}))
    with pytest.raises(BenchError, match="s_evaluations.json: expected an object with an"):
        read_evaluations(folder)


# -- SLM-Lab's stages, for real ----------------------------------------------------------------

STAGED = Path(__file__).parent / "fixtures" / "search" / "tiny_search_sessions.yaml"


@pytest.mark.slow
def test_asha_single_session_trials_then_multi_session_reevaluation(tmp_path):
    """A real `slm-bench run ... search` (PPO CartPole, 2e3 frames): three single-session trials
    under the successive-halving pruner, then the two best trained again with both sessions."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "slm_bench", "run", "-s", "max_frame=2000", "--seed", "11",
            "--reevaluate-top", "2", "--", str(STAGED), "ppo_tiny", "search"]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "overriding max_session from 2 to 1" in done.stdout
    (folder,) = (tmp_path / "data").iterdir()
    record = read_evaluations(folder)
    assert record["reevaluate_top"] == 2 and record["base_seed"] == 11
    finished = {k: v for k, v in record["trials"].items() if v["sessions"]}
    assert finished and all(len(v["sessions"]) == 1 for v in finished.values())  # ASHA stage
    evaluations = record["evaluations"]
    assert [e["run"] for e in evaluations] == [3, 4][: len(evaluations)]
    assert all(len(e["sessions"]) == 2 for e in evaluations)  # every session of the spec
    assert [e["seeds"] for e in evaluations] == [[300011, 301011], [400011, 401011]][
        : len(evaluations)
    ]
    trial_seeds = {s for v in record["trials"].values() for s in v["seeds"] or []}
    assert trial_seeds <= {11, 100011, 200011}
    by_draw = sorted(finished, key=lambda k: -finished[k]["sessions"][0])
    assert [str(e["trial"]) for e in evaluations] == by_draw[: len(evaluations)]


def test_the_configured_top_reaches_only_the_search_argv(tmp_path):
    from slm_bench.matrix.config import load_config, read_config
    from slm_bench.runners import RunRequest
    from slm_bench.runners.process import embedded_runner
    from slm_bench.steps import runner_options

    config = read_config(tiny_config(search_reevaluate_top=5))
    runner = embedded_runner(runner_options(config, 2))
    request = RunRequest("s.yaml", "ppo", {}, tmp_path, tmp_path / "log", tmp_path / "j", 60)
    search = runner.argv(replace(request, mode="search"), "s.yaml")
    assert search[search.index("--") - 2 : search.index("--")] == ["--reevaluate-top", "5"]
    assert "--reevaluate-top" not in runner.argv(request, "s.yaml")  # a train run has no pick
    defaults = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    defaults.pop("search_reevaluate_top", None)
    load_config(defaults, "config.yaml")
    assert defaults["search_reevaluate_top"] == 3
