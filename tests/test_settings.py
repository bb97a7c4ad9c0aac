import math
import re
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.formats.settings import (
    Range,
    Settings,
    Target,
    format_number,
    parse_number,
    parse_settings_line,
    parse_target,
)
from slm_bench.formats.status_rule import (
    STATUS_CLOSE,
    STATUS_FAILED,
    STATUS_SOLVED,
    Legend,
    computed_status,
    parse_legend,
    status_label,
)

BENCHMARKS_MD = Path(__file__).resolve().parent / "fixtures" / "slm-lab" / "BENCHMARKS.md"


def benchmark_lines(prefix: str) -> list[str]:
    lines = BENCHMARKS_MD.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.startswith(prefix)]


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2e5", 200_000),
        ("10e6", 10_000_000),
        ("1e4", 10_000),
        ("10000", 10_000),
        ("100M", 100_000_000),
        ("1.5e6", 1_500_000),
        ("3K", 3_000),
        ("4.0e+6", 4_000_000),
        (" 500 ", 500),
        (300000.0, 300_000),
        (4, 4),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "2e5x", "1.5", "-4", "1e-3", "nan", True, 2.5])
def test_parse_number_rejects_garbage(text):
    with pytest.raises(BenchError):
        parse_number(text, "max_frame")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (500, "500"),
        (10_000, "10000"),
        (99_999, "99999"),
        (200_000, "2e5"),
        (300_000, "3e5"),
        (250_000, "25e4"),
        (1_500_000, "15e5"),
        (4_000_000, "4e6"),
        (10_000_000, "10e6"),
        (100_000_000, "100e6"),
        (123_456, "123456"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text
    assert parse_number(text) == value


def test_format_number_round_trips():
    for value in [1, 7, 1000, 100_000, 100_001, 2_048_000, 30_000_000, 7_500_000]:
        assert parse_number(format_number(value)) == value


# --- Settings -----------------------------------------------------------------------------------


def test_parse_settings_line_with_and_without_prefix():
    expected = Settings(max_frame=200_000, num_envs=4, max_session=4, log_frequency=500)
    line = "**Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"
    assert parse_settings_line(line) == expected
    assert parse_settings_line(
        "max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"
    ) == (expected)
    assert expected.line() == "max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"


def test_settings_range_and_missing_fields():
    settings = parse_settings_line("**Settings**: max_frame 4e6-10e6 | num_envs 16")
    assert settings == Settings(max_frame=Range(4_000_000, 10_000_000), num_envs=16)
    assert settings.line() == "max_frame 4e6-10e6 | num_envs 16"


@pytest.mark.parametrize(
    "line",
    [
        "**Settings**: max_frame 2e5 | num_env 4",
        "**Settings**: max_frame",
        "**Settings**: max_frame 2e5 | max_frame 3e5",
        "**Settings**: num_envs 4-8",
        "**Settings**: max_frame 10e6-4e6",
        "**Settings**:",
    ],
)
def test_parse_settings_line_rejects_bad_lines(line):
    with pytest.raises(BenchError, match="Settings line"):
        parse_settings_line(line, "BENCHMARKS.md")


def test_from_mapping_accepts_notation_and_rejects_unknown_keys():
    settings = Settings.from_mapping({"max_frame": "3e5", "num_envs": 4, "log_frequency": 1e3})
    assert settings == Settings(max_frame=300_000, num_envs=4, log_frequency=1000)
    assert settings.as_dict() == {
        "max_frame": 300_000,
        "num_envs": 4,
        "max_session": None,
        "log_frequency": 1000,
    }
    with pytest.raises(BenchError, match="config.yaml: unknown Settings field 'frames'"):
        Settings.from_mapping({"frames": 5}, "config.yaml")
    with pytest.raises(BenchError, match="config.yaml: num_envs: expected a number"):
        Settings.from_mapping({"num_envs": "four"}, "config.yaml")


def test_mismatches():
    settings = Settings(max_frame=Range(4_000_000, 10_000_000), num_envs=16, max_session=None)
    spec_values = {"max_frame": 4_000_000, "num_envs": 16, "max_session": 1, "log_frequency": 7}
    assert settings.mismatches(spec_values) == []
    assert settings.mismatches({**spec_values, "max_frame": 3_000_000, "num_envs": 8}) == [
        "max_frame: spec has 3000000, Settings line says 4e6-10e6",
        "num_envs: spec has 8, Settings line says 16",
    ]
    assert Settings(log_frequency=500).mismatches({"log_frequency": None}) == [
        "log_frequency: spec has no value, Settings line says 500"
    ]


def test_every_settings_line_in_the_real_benchmarks_md_parses():
    lines = benchmark_lines("**Settings**:")
    assert len(lines) >= 19
    for line in lines:
        settings = parse_settings_line(line, "BENCHMARKS.md")
        # Re-rendering gives the same numbers (notation may differ: 1e4 -> 10000).
        assert parse_settings_line(settings.line()) == settings
        assert settings.max_frame is not None and settings.num_envs is not None
    parsed = [parse_settings_line(line) for line in lines]
    assert parsed[0] == Settings(200_000, 4, 4, 500)
    assert Settings(Range(4_000_000, 10_000_000), 16, 4, 10_000) in parsed  # MuJoCo phase line
    assert Settings(100_000_000, 2048, 4, None) in parsed  # Playground phase line


# --- targets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target", "rendered"),
    [
        ("> 400", Target(">", 400.0), "> 400"),
        ("~ 2000", Target("~", 2000.0), "~ 2000"),
        ("~1000", Target("~", 1000.0), "~ 1000"),
        ("> -100", Target(">", -100.0), "> -100"),
        ("> 0.5", Target(">", 0.5), "> 0.5"),
        (
            "**Docs**: [CartPole](https://x/) | State: Box(4) | Action: Discrete(2) | "
            "Target reward MA > 400",
            Target(">", 400.0),
            "> 400",
        ),
    ],
)
def test_parse_target(text, target, rendered):
    assert parse_target(text) == target
    assert parse_target(text).text == rendered


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "**Docs**: [Atari](https://x/) | State: Box(84,84,4) | Action: Discrete(4-18, game-dep)",
        '**Docs**: [MuJoCo](https://x/) | Target: Practical baselines (no "solved" threshold)',
        "about 400",
    ],
)
def test_parse_target_absent(text):
    assert parse_target(text) is None


def test_every_docs_line_in_the_real_benchmarks_md():
    lines = benchmark_lines("**Docs**:")
    with_target = [line for line in lines if re.search(r"Target reward MA\s*[>~]", line)]
    assert len(with_target) >= 16
    for line in lines:
        target = parse_target(line)
        if line in with_target:
            assert target is not None, line
            # The target read back is the one written at the end of the line.
            written = re.search(r"Target reward MA\s*([>~])\s*(-?[\d.]+)", line)
            assert (target.op, target.value) == (written.group(1), float(written.group(2)))
        else:
            assert target is None, line
    targets = {parse_target(line).text for line in with_target}
    assert {"> 400", "> -100", "> -200", "~ 2000", "~ 8000", "> 100000"} <= targets


# --- status -------------------------------------------------------------------------------------

CARTPOLE, ACROBOT, PENDULUM = Target(">", 400), Target(">", -100), Target(">", -200)


@pytest.mark.parametrize(
    ("score", "target", "random", "expected"),
    [
        # CartPole > 400 with random 22.97: close from 22.97 + 0.8 * 377.03 = 324.594
        (400.0, CARTPOLE, 22.97, STATUS_SOLVED),
        (498.9, CARTPOLE, 22.97, STATUS_SOLVED),
        (399.99, CARTPOLE, 22.97, STATUS_CLOSE),
        (324.6, CARTPOLE, 22.97, STATUS_CLOSE),
        (324.5, CARTPOLE, 22.97, STATUS_FAILED),
        # unknown random: random = 400 - 400 - 1 = -1, close from -1 + 0.8 * 401 = 319.8
        (319.8, CARTPOLE, None, STATUS_CLOSE),
        (319.7, CARTPOLE, None, STATUS_FAILED),
        # Acrobot > -100 with random -499.86: close from -499.86 + 0.8 * 399.86 = -179.972
        (-100.0, ACROBOT, -499.86, STATUS_SOLVED),
        (-179.9, ACROBOT, -499.86, STATUS_CLOSE),
        (-180.1, ACROBOT, -499.86, STATUS_FAILED),
        # unknown random: random = -100 - 100 - 1 = -201, close from -201 + 0.8 * 101 = -120.2
        (-120.2, ACROBOT, None, STATUS_CLOSE),
        (-120.3, ACROBOT, None, STATUS_FAILED),
        # Pendulum > -200 with random -1197.15: close from -1197.15 + 0.8 * 997.15 = -399.43
        (-199.0, PENDULUM, -1197.15, STATUS_SOLVED),
        (-399.4, PENDULUM, -1197.15, STATUS_CLOSE),
        (-399.5, PENDULUM, -1197.15, STATUS_FAILED),
        # a random return at or above the target is ignored (target's own scale)
        (-120.2, ACROBOT, -50.0, STATUS_CLOSE),
        (-120.3, ACROBOT, -100.0, STATUS_FAILED),
        # "~" counts as its value
        (2000.0, Target("~", 2000), 0.0, STATUS_SOLVED),
        (1999.0, Target("~", 2000), 0.0, STATUS_CLOSE),
        (math.nan, CARTPOLE, 22.97, STATUS_FAILED),
        (math.inf, CARTPOLE, 22.97, STATUS_SOLVED),
    ],
)
def test_baseline_status_rule(score, target, random, expected):
    assert computed_status(score, target, random, rule="baseline") == expected


@pytest.mark.parametrize(
    ("score", "target", "random", "expected"),
    [
        # CrossQ CartPole: 324.10 is 81% of > 400; the maintainers wrote ⚠️ (baseline: Failed)
        (324.10, CARTPOLE, 22.97, STATUS_CLOSE),
        (320.0, CARTPOLE, 22.97, STATUS_CLOSE),
        (319.99, CARTPOLE, 22.97, STATUS_FAILED),
        (400.0, CARTPOLE, 22.97, STATUS_SOLVED),
        (math.nan, CARTPOLE, 22.97, STATUS_FAILED),
        # Hopper ~ 2000: ~ counts as its value
        (1600.0, Target("~", 2000), 18.0, STATUS_CLOSE),
        (1599.0, Target("~", 2000), 18.0, STATUS_FAILED),
        # a target <= 0: 80% of the way from the random policy's return
        (-179.9, ACROBOT, -499.86, STATUS_CLOSE),
        (-180.1, ACROBOT, -499.86, STATUS_FAILED),
        (-399.4, PENDULUM, -1197.15, STATUS_CLOSE),
        (-120.2, ACROBOT, None, STATUS_CLOSE),
        (-120.3, ACROBOT, None, STATUS_FAILED),
        (0.0, Target(">", 0), -10.0, STATUS_SOLVED),
        (-1.9, Target(">", 0), -10.0, STATUS_CLOSE),
        (-2.1, Target(">", 0), -10.0, STATUS_FAILED),
    ],
)
def test_legend_status_rule(score, target, random, expected):
    assert computed_status(score, target, random) == expected
    assert computed_status(score, target, random, rule="legend") == expected


def test_status_without_target_is_empty():
    assert computed_status(1e9, None, 0.0) == ""


def test_unknown_status_rule_is_one_line():
    with pytest.raises(BenchError, match="status_rule 'vibes': expected one of legend, baseline"):
        computed_status(1.0, CARTPOLE, 0.0, rule="vibes")


def test_legend_symbols_today_and_older():
    today = benchmark_lines("**Legend**: ✅")[0]
    legend = parse_legend(today)
    assert legend == Legend(solved="✅", close="⚠️", failed="")
    assert [legend.symbol(s) for s in (STATUS_SOLVED, STATUS_CLOSE, STATUS_FAILED)] == [
        "✅",
        "⚠️",
        "",
    ]
    older = parse_legend(today.replace("| Failed |", "| ❌ Failed |"))
    assert older.symbol(STATUS_FAILED) == "❌"
    assert older.canonical("❌") == STATUS_FAILED and older.canonical("📊") == "📊"
    # the Atari lambda table's legend is not a status legend
    assert parse_legend("**Legend**: **Bold** = Best score | - = Not tested") is None


def test_status_labels():
    assert [status_label(s) for s in (STATUS_SOLVED, STATUS_CLOSE, STATUS_FAILED, "❌")] == [
        "Solved",
        "Close",
        "Failed",
        "Failed",
    ]
    assert status_label("📊") == "Acceptable"
    with pytest.raises(BenchError, match="unknown symbol"):
        status_label("Skip")


def test_status_symbols_match_the_real_legend():
    legend = benchmark_lines("**Legend**: ✅")[0]
    assert f"{STATUS_SOLVED} Solved" in legend
    assert f"{STATUS_CLOSE} Close" in legend


def test_with_budget_is_bounded_by_the_settings_line():
    line = parse_settings_line("max_frame 10e6 | num_envs 16 | max_session 4 | log_frequency 1e4")
    sac = line.with_budget("2e6")
    assert sac.max_frame == 2_000_000 and sac.num_envs == 16
    assert sac.line() == "max_frame 2e6 | num_envs 16 | max_session 4 | log_frequency 10000"
    assert line.with_budget(10_000_000) == line
    above = "sac.max_frame: frame budget 20e6 is above the Settings max_frame 10e6"
    with pytest.raises(BenchError, match=above):
        line.with_budget("2e7", "config.yaml: envs.Ant-v5.algorithms.sac.max_frame")
    ranged = parse_settings_line("max_frame 4e6-10e6 | num_envs 16")
    assert ranged.with_budget(3_000_000).max_frame == 3_000_000
    with pytest.raises(BenchError, match="one number"):
        line.with_budget("1e6-2e6")
