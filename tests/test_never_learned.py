"""Sessions that never learned: the rule on its own, on a real SLM-Lab run folder, and a real
stuck training (learning rate 0) flagged in stats.json, `status`, the audit and the report."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from workflow_helpers import make_workdir, snakemake

from slm_bench.formats.run_folder import RunLayout
from slm_bench.formats.settings import parse_target
from slm_bench.statistics.never_learned import (
    action_space,
    entropy_reason,
    never_learned,
    note,
    return_reason,
)
from slm_bench.steps.stats import cell_stats

FIXTURES = Path(__file__).parent / "fixtures"
SLM_LAB_RUN = FIXTURES / "slm-lab-runs" / "ppo_cartpole_arc_2026_11_29_185430"
ACROBOT = parse_target("> -100")
ACROBOT_RANDOM = -499.86  # SLM-Lab's _random_baseline.json


def test_acrobot_sessions_at_random_are_flagged_and_low_learners_are_not():
    # issue's fresh-seed Acrobot run: three sessions near -85 and one at -500 / -499.78
    assert return_reason(-500.0, ACROBOT, ACROBOT_RANDOM)
    assert return_reason(-499.78, ACROBOT, ACROBOT_RANDOM)
    assert return_reason(-481.0, ACROBOT, ACROBOT_RANDOM)  # 4.7% of the 399.86 gap
    assert return_reason(-478.0, ACROBOT, ACROBOT_RANDOM) is None  # 5.5%: it learned a little
    assert return_reason(-300.0, ACROBOT, ACROBOT_RANDOM) is None  # scored low, but learned
    assert return_reason(-83.67, ACROBOT, ACROBOT_RANDOM) is None
    assert return_reason(-500.0, ACROBOT, None) is None  # no band without a random return
    assert return_reason(math.nan, ACROBOT, ACROBOT_RANDOM) is None


def test_entropy_at_its_maximum_for_discrete_unchanged_for_continuous():
    three = ("discrete", 3)
    assert entropy_reason((1.09, 1.095), three)  # the stuck Acrobot sessions: 1.095, 1.098
    assert entropy_reason((1.09, 1.098), three)
    assert entropy_reason((1.09, 1.08), three) is None  # 98.3% of ln 3
    assert entropy_reason((0.69, 0.55), ("discrete", 2)) is None
    assert entropy_reason((1.42, 1.43), ("continuous", 1))  # a std that did not move
    assert entropy_reason((1.42, 1.20), ("continuous", 1)) is None  # narrowed: it learned
    assert entropy_reason((1.42, 1.60), ("continuous", 1)) is None  # widened: it changed
    assert entropy_reason((2.84, 2.87), ("continuous", 2))  # 0.02 nats per dimension
    assert entropy_reason(None, three) is None and entropy_reason((1.0, 1.0), None) is None


def test_action_spaces_come_from_gymnasium():
    assert action_space("Acrobot-v1") == ("discrete", 3)
    assert action_space("Pendulum-v1") == ("continuous", 1)
    assert action_space("NoSuchEnv-v9") is None


def test_note_reads_as_a_sentence():
    assert note(1, 4) == "1 of 4 sessions never learned"
    assert note(1, 1) == "1 of 1 session never learned"
    assert note(0, 4) == ""


def _session_csv(path: Path, returns: list[float], entropies: list[float]) -> None:
    lines = ["total_reward,frame,opt_step,entropy"]
    lines += [
        f"{r},{500 * (i + 1)},{i},{e}"
        for i, (r, e) in enumerate(zip(returns, entropies, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")


def test_one_stuck_session_among_four_is_named_with_its_reasons(tmp_path):
    layout = RunLayout(tmp_path, "a2c_acrobot")
    layout.info_dir.mkdir()
    learned = ([-500.0, -200.0, -90.0], [1.098, 0.6, 0.4])
    stuck = ([-500.0, -500.0, -499.8], [1.0986, 1.098, 1.098])
    low = ([-500.0, -400.0, -300.0], [1.098, 0.95, 0.9])  # learned a little: not flagged
    for s, (returns, entropies) in enumerate((learned, stuck, low, learned)):
        _session_csv(layout.session_df_csv(s), returns, entropies)
    flagged = never_learned(layout, [-86.0, -499.8, -300.0, -84.0], "Acrobot-v1", ACROBOT, -499.86)
    assert flagged["note"] == "1 of 4 sessions never learned"
    assert [s["session"] for s in flagged["sessions"]] == [1]
    assert flagged["sessions"][0]["reasons"] == [
        "final MA -499.80 at the random policy's -499.86",
        "entropy 1.098 at its maximum ln 3 = 1.099",
    ]
    assert flagged["unchecked"] == []


def test_a_real_slm_lab_run_at_5000_frames_is_still_at_random(tmp_path):
    """SLM-Lab's own PPO CartPole after 5e3 frames: final MAs 24-27 against a random 22.97 and
    a target of 400 (under 1.2% of the gap); entropy 0.64 of ln 2 = 0.69: only the return says
    so."""
    stats = cell_stats("CartPole-v1/ppo", "CartPole-v1", "PPO", "> 400", 22.97, SLM_LAB_RUN)
    flagged = stats["never_learned"]
    assert flagged["note"] == "4 of 4 sessions never learned"
    assert all(
        len(s["reasons"]) == 1 and "final MA" in s["reasons"][0] for s in flagged["sessions"]
    )
    # the same run against a target it nearly reaches is not flagged: the band is relative
    near = cell_stats("CartPole-v1/ppo", "CartPole-v1", "PPO", "> 30", 22.97, SLM_LAB_RUN)
    assert near["never_learned"]["count"] == 0 and near["mean"] == stats["mean"]


def test_without_a_random_return_the_return_check_says_it_did_not_run():
    stats = cell_stats("CartPole-v1/ppo", "CartPole-v1", "PPO", "> 400", None, SLM_LAB_RUN)
    assert stats["never_learned"]["count"] == 0
    assert stats["never_learned"]["unchecked"] == [
        "return: no target or no random-policy return for this env"
    ]


# -- a real stuck training through the workflow -----------------------------------------------

CELL = "results/CartPole-v1/a2c"


@pytest.mark.slow
def test_a_stuck_training_is_flagged_in_stats_status_audit_and_report(tmp_path):
    settings = {"max_frame": 2000, "num_envs": 4, "max_session": 2, "log_frequency": 500}
    a2c = {"label": "A2C", "spec_file": "specs/stuck.yaml", "spec_name": "a2c_stuck"}
    envs = {"CartPole-v1": {"settings": settings, "target": "> 400", "algorithms": {"a2c": a2c}}}
    config = {"runner": "embedded", "store": "local", "seed": 3, "envs": envs}
    workdir = make_workdir(tmp_path, config)
    shutil.copy(FIXTURES / "specs" / "stuck.yaml", workdir / "specs" / "stuck.yaml")
    built = snakemake(workdir, "report_pages", "results/audit.md")
    assert built.returncode == 0, built.stdout[-4000:]
    assert "warning: CartPole-v1/a2c: 2 of 2 sessions never learned (s0:" in built.stdout

    stats = json.loads((workdir / CELL / "stats.json").read_text())
    flagged = stats["never_learned"]
    assert flagged["count"] == 2 and flagged["note"] == "2 of 2 sessions never learned"
    # lr 0: the policy stays as initialised. With SLM-Lab's init (orthogonal, the activation's
    # gain on the output head too) that policy is not uniform, so the return band flags every
    # session; the entropy rule is checked on its own in the unit tests above.
    for session in flagged["sessions"]:
        assert session["reasons"][0].startswith("final MA ")
        assert "at the random policy's 22.97" in session["reasons"][0]
    metrics = json.loads((workdir / CELL / "metrics.json").read_text())
    # MA kept: SLM-Lab's mean, as its log prints it (2 decimals) in metrics.json
    assert stats["trial_ma"] == pytest.approx(metrics["total_reward_ma"], abs=0.005)
    summary = json.loads((workdir / "results/stats/summary.json").read_text())
    assert summary["cells"]["CartPole-v1/a2c"]["never_learned"] == "2 of 2 sessions never learned"

    status = snakemake(workdir, "status")
    assert status.returncode == 0, status.stdout[-3000:]
    line = next(x for x in (workdir / "results/status.txt").read_text().splitlines()
                if x.startswith("CartPole-v1/a2c"))  # fmt: skip
    assert " done " in line and line.endswith("2 of 2 sessions never learned")

    # The audit ran in the same build, before stats.json existed: it said so. Its params hold
    # what each cell's stats.json says, so asking again reruns it.
    audit = (workdir / "results/audit.md").read_text()
    assert "| CartPole-v1 | A2C | not checked: no stats.json for its current run" in audit
    audited = snakemake(workdir, "results/audit.md")
    assert audited.returncode == 0, audited.stdout[-3000:]
    audit = (workdir / "results/audit.md").read_text()
    assert "## Sessions that never learned" in audit
    assert "1 of 1 cells have sessions that never learned." in audit
    assert "| CartPole-v1 | A2C | 2 of 2 sessions never learned (s0: final MA" in audit

    overview = (workdir / "results/report/overview.html").read_text()
    assert "<td>2 of 2 sessions never learned</td>" in overview
    env_page = (workdir / "results/report/envs/CartPole-v1.html").read_text()
    assert "<strong>2 of 2 sessions never learned</strong>" in env_page
    assert env_page.count("never learned: final MA") == 2

    # A later run of the cell: the old stats.json no longer speaks for it in `status`.
    run = json.loads((workdir / CELL / "run.json").read_text())
    (workdir / CELL / "run.json").write_text(json.dumps({**run, "data_folder": "other_run"}))
    status = snakemake(workdir, "status")
    assert status.returncode == 0, status.stdout[-3000:]
    assert "never learned" not in (workdir / "results/status.txt").read_text()
