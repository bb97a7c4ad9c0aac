"""Frame budgets documented in BENCHMARKS.md, read from SLM-Lab's real file and older layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc, FrameBudget, read_budgets, row_frames
from slm_bench.formats.settings import Range

HERE = Path(__file__).resolve().parent
REAL = HERE / "fixtures" / "slm-lab" / "BENCHMARKS.md"
OLDER = HERE / "fixtures" / "benchmarks" / "older_layouts.md"
MUJOCO, ATARI = "Phase 3: MuJoCo", "Phase 4: Atari"


@pytest.fixture(scope="module")
def real():
    return read_budgets(BenchmarksDoc.read(REAL))


def test_real_reproduce_table_gives_each_mujoco_spec_its_budget(real):
    assert len(real.by_spec) == 33  # 11 envs x PPO, SAC, CrossQ
    assert real.find("Ant-v5", MUJOCO, "SAC", "sac_ant_arc") == FrameBudget(
        2_000_000, 257, "MAX_FRAME table"
    )
    assert real.find("Humanoid-v5", MUJOCO, "CrossQ", "crossq_humanoid").frames == 2_000_000
    # an empty ENV cell continues the env above it
    assert real.find(
        "InvertedPendulum-v5", MUJOCO, "CrossQ", "crossq_inverted_pendulum"
    ).frames == (7_000_000)
    assert real.find("InvertedPendulum-v5", MUJOCO, "PPO", "ppo_inverted_pendulum_arc").frames == (
        4_000_000
    )


def test_real_atari_spec_list_and_mujoco_note(real):
    # "- **SAC**: [sac_atari_arc.yaml](...) - ..., max_frame=2e6" covers every Atari SAC row
    assert real.find("ALE/Pong-v5", ATARI, "SAC", "sac_atari_arc") == FrameBudget(
        2_000_000, 458, "spec list"
    )
    assert real.find("ALE/Pong-v5", ATARI, "CrossQ", "crossq_atari").frames == 2_000_000
    assert real.find("ALE/Pong-v5", ATARI, "A2C", "a2c_gae_atari_arc") is None
    # The note's ranges ("SAC benchmarks use 1-4M frames", CrossQ "(3-7.5M)") rank last.
    assert real.ranges[(MUJOCO, "SAC")].frames == Range(1_000_000, 4_000_000)
    assert real.ranges[(MUJOCO, "CrossQ")].frames == Range(3_000_000, 7_500_000)
    assert (MUJOCO, "PPO") not in real.ranges  # "(vs PPO's 4-10M)" is about SAC's sentence
    assert real.find("Swimmer-v5", MUJOCO, "SAC", "sac_other").describe() == (
        "1e6-4e6 (frame budget note, line 219)"
    )
    # The code fences' "# SAC (2M frames ...)" comments are not read.
    assert all(b.line != 479 for b in real.by_algorithm.values())


def test_older_layout_budgets():
    budgets = read_budgets(BenchmarksDoc.read(OLDER))
    # `| ENV | MAX_FRAME | SPEC_FILE | SPEC_NAME |`: columns found by name
    assert budgets.find("Hopper-v5", MUJOCO, "PPO", "ppo_hopper").frames == 4_000_000
    assert budgets.find("Hopper-v5", MUJOCO, "SAC", "sac_hopper").frames == Range(
        1_000_000, 2_000_000
    )
    assert budgets.find("ALE/Pong-v5", ATARI, "SAC", "sac_atari").frames == 2_000_000


EXACT = FrameBudget(2_000_000, 1, "MAX_FRAME table")
RANGE = FrameBudget(Range(1_000_000, 4_000_000), 2, "frame budget note")


@pytest.mark.parametrize(
    ("budget", "spec_frames", "policy", "expected"),
    [
        (EXACT, 2_000_000, "documented", 2_000_000),  # hard-coded at its budget
        (EXACT, None, "documented", 2_000_000),  # ${max_frame}: -s max_frame=2e6
        (FrameBudget(10_000_000, 1, "t"), None, "documented", None),  # = Settings: no change
        (RANGE, 3_000_000, "documented", 3_000_000),  # the spec's own value, in the range
        (RANGE, 5_000_000, "documented", None),  # outside it: audited against the Settings
        (RANGE, None, "documented", None),
        (None, 3_000_000, "documented", None),  # undocumented: the Settings line (an error)
        (None, 3_000_000, "spec", 3_000_000),  # policy spec: the spec's value below Settings
        (None, 20_000_000, "spec", None),
        (EXACT, 2_000_000, "settings", None),  # policy settings: budgets ignored
    ],
)
def test_row_frames_policies(budget, spec_frames, policy, expected):
    assert row_frames(budget, 10_000_000, spec_frames, policy) == expected


def test_row_frames_refuses_a_budget_above_the_settings_and_bad_policies():
    above = r"budget 20e6 \(spec list, line 9\) is above the Settings max_frame 10e6"
    with pytest.raises(BenchError, match=above):
        row_frames(FrameBudget(20_000_000, 9, "spec list"), 10_000_000, None)
    with pytest.raises(BenchError, match="checkout.frame_budgets 'loose': expected one of"):
        row_frames(None, 10_000_000, None, "loose")
    # a phase-level range Settings line: its high end is the limit
    assert row_frames(EXACT, Range(4_000_000, 10_000_000), None) == 2_000_000
