"""Comparison with a reference table: reading references, verdicts, the markdown, and the gate
(non-zero exit on a planted regression, zero within noise) through the real workflow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from tiny_results import copy_of, tiny_benchmark
from workflow_helpers import planned_jobs, snakemake

from slm_bench.errors import BenchError
from slm_bench.statistics.compare import (
    IMPROVED,
    NO_REFERENCE,
    REGRESSED,
    WITHIN_NOISE,
    ReferenceEntry,
    check_comparison,
    compare_cell,
    compare_results,
    match_reference,
    read_reference,
    render_markdown,
)

SLM_LAB_TABLE = Path(__file__).parent / "fixtures/slm-lab/BENCHMARKS.md"
CARTPOLE_RANDOM = 22.97  # SLM-Lab's random baseline for CartPole-v1


def cell_stats(sessions: list[float], cell="CartPole-v1/ppo", target="> 400") -> dict:
    """A stats.json as the pipeline writes it, for the sessions given."""
    from slm_bench.statistics.stats import summarise

    return {
        "cell": cell,
        "env_id": cell.split("/")[0],
        "algorithm": cell.split("/")[1].upper(),
        "sessions": [{"session": s, "final_ma": v} for s, v in enumerate(sessions)],
        "trial_ma": sum(sessions) / len(sessions),
        **summarise([sessions]).as_dict(),
        "target": target,
        "random_return": CARTPOLE_RANDOM,
    }


# -- references -------------------------------------------------------------------------------


def test_slm_labs_table_is_a_reference():
    entries = read_reference(SLM_LAB_TABLE)
    ppo = match_reference(entries, "CartPole-v1", "ppo_cartpole_arc", "PPO")
    assert (ppo.ma, ppo.spec_name) == (498.94, "ppo_cartpole_arc")
    # the project's own spec names differ from SLM-Lab's: the env's only PPO row is the match
    assert match_reference(entries, "CartPole-v1", "ppo_cartpole", "PPO") == ppo
    assert match_reference(entries, "Acrobot-v1", "x", "DQN").ma == -94.17
    assert match_reference(entries, "CartPole-v1", "x", "TRPO") is None


def test_missing_reference_is_one_line(tmp_path):
    with pytest.raises(BenchError, match="compare reference not found"):
        read_reference(tmp_path / "nope.md")
    with pytest.raises(BenchError, match="no \\{env\\}/\\{algo\\}/stats.json"):
        read_reference(tmp_path)


# -- verdicts ---------------------------------------------------------------------------------

SOLID = [480.0, 490.0, 495.0, 499.0]
NOISY = [256.49, 368.42, 417.10, 454.10]  # four of the five DQN scores in the issue


@pytest.mark.parametrize(
    ("sessions", "reference", "verdict"),
    [
        (NOISY, 498.94, REGRESSED),  # the CI of the mean is far below the reference
        (SOLID, 498.94, WITHIN_NOISE),  # CI below it, but by less than 5% of random->target
        (SOLID, 400.0, IMPROVED),
        (NOISY, 380.0, WITHIN_NOISE),  # the reference is inside the CI
    ],
)
def test_verdict_needs_the_ci_and_a_real_effect(sessions, reference, verdict):
    entry = ReferenceEntry("CartPole-v1", "PPO", "ppo_cartpole_arc", reference)
    result = compare_cell(cell_stats(sessions), "ppo_cartpole", entry, 0.05)
    assert result["verdict"] == verdict, result
    assert result["difference"] == pytest.approx(sum(sessions) / len(sessions) - reference)
    assert result["threshold"] == pytest.approx(0.05 * (400 - CARTPOLE_RANDOM))
    low, high = result["difference_ci"]
    assert low <= result["difference"] <= high


def test_a_reference_with_sessions_compares_both_samples():
    entry = ReferenceEntry("CartPole-v1", "PPO", "p", 430.0, sessions=(400.0, 420.0, 440.0, 460.0))
    result = compare_cell(cell_stats(NOISY), "p", entry, 0.05)
    assert result["basis"].startswith("CI of the difference of session means")
    assert result["verdict"] == WITHIN_NOISE  # both samples are spread: the CI covers 0
    entry = ReferenceEntry("CartPole-v1", "PPO", "p", 500.0, sessions=(499.0, 500.0, 500.0, 501.0))
    assert compare_cell(cell_stats(NOISY), "p", entry, 0.05)["verdict"] == REGRESSED


def test_one_session_or_no_reference():
    entry = ReferenceEntry("CartPole-v1", "PPO", "p", 498.94)
    one = compare_cell(cell_stats([300.0]), "p", entry, 0.05)
    assert one["verdict"] == REGRESSED and one["basis"].startswith("one session")
    assert compare_cell(cell_stats([499.0]), "p", entry, 0.05)["verdict"] == WITHIN_NOISE
    assert compare_cell(cell_stats(SOLID), "p", None, 0.05)["verdict"] == NO_REFERENCE


def test_comparison_markdown_and_gate(tmp_path):
    stats_files = []
    for cell, sessions in (("CartPole-v1/ppo", NOISY), ("CartPole-v1/dqn", SOLID)):
        path = tmp_path / cell / "stats.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(cell_stats(sessions, cell)))
        stats_files.append(path)
    comparison = compare_results(
        [json.loads(p.read_text()) for p in stats_files], {}, SLM_LAB_TABLE, 0.05
    )
    # PPO 374.03 vs SLM-Lab's 498.94 regressed; DQN 491 vs its 239.94 improved
    assert (comparison["counts"][REGRESSED], comparison["counts"][IMPROVED]) == (1, 1)
    text = render_markdown(comparison)
    assert "| CartPole-v1 | PPO | 374.03 |" in text and "⬇️ regressed" in text
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(comparison))
    gate_error = r"compare_gate: 1 regression\(s\): CartPole-v1 PPO 374.03 < 498.94"
    with pytest.raises(BenchError, match=gate_error):
        check_comparison(path, True, tmp_path / "checked", print)
    check_comparison(path, False, tmp_path / "checked", print)  # gate off: reported only
    summary = "1 regression(s) in 2 compared cell(s); 0 cell(s) have no reference in "
    assert (tmp_path / "checked").read_text().startswith(summary)


# -- the real workflow ------------------------------------------------------------------------


def plant_reference(workdir: Path, out: Path, shift: dict[tuple[str, str], float]) -> Path:
    """The built BENCHMARKS.md with each row's MA moved by ``shift[(env, algorithm)]``."""
    env, lines = None, []
    for line in (workdir / "results/BENCHMARKS.md").read_text().splitlines():
        if heading := re.match(r"#### \S+ (\S+)", line):
            env = heading.group(1)
        if row := re.match(r"\| (\w+) \|[^|]*\| (-?[0-9.]+) \|", line):
            moved = float(row.group(2)) + shift[(env, row.group(1))]
            line = line.replace(f"| {row.group(2)} |", f"| {moved:.2f} |", 1)
        lines.append(line)
    out.write_text("\n".join(lines) + "\n")
    return out


def configure(workdir: Path, **keys) -> None:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config.update(keys)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return tiny_benchmark(tmp_path_factory)


@pytest.mark.slow
def test_gate_fails_on_a_planted_regression_and_passes_within_noise(built, tmp_path):
    workdir = copy_of(built, tmp_path / "work")
    # PPO's reference is 300 above its MA: a regression far outside the CI and the threshold;
    # DQN's 0.3 above is within noise; Acrobot PPO's reference is 150 below: improved.
    shift = {
        ("CartPole-v1", "PPO"): 300.0,
        ("CartPole-v1", "DQN"): 0.3,
        ("Acrobot-v1", "PPO"): -150.0,
    }
    planted = plant_reference(workdir, tmp_path / "planted.md", shift)
    configure(workdir, compare_reference=str(planted), compare_gate=True)
    result = snakemake(workdir, "compare")
    assert result.returncode != 0, result.stdout[-3000:]
    assert "run_cell" not in planned_jobs(result.stdout), "comparing must not retrain"
    assert "compare_gate: 1 regression(s): CartPole-v1 PPO" in result.stdout
    comparison = json.loads((workdir / "results/compare.json").read_text())
    verdicts = {cell["cell"]: cell["verdict"] for cell in comparison["cells"]}
    assert verdicts == {
        "CartPole-v1/ppo": REGRESSED,
        "CartPole-v1/dqn": WITHIN_NOISE,
        "Acrobot-v1/ppo": IMPROVED,
    }
    metrics = json.loads((workdir / "results/CartPole-v1/ppo/metrics.json").read_text())
    ppo = next(c for c in comparison["cells"] if c["cell"] == "CartPole-v1/ppo")
    assert ppo["new_ma"] == pytest.approx(metrics["total_reward_ma"], abs=0.01)
    assert ppo["difference"] == pytest.approx(-300.0, abs=0.01)
    assert "⬇️ regressed" in (workdir / "results/compare.md").read_text()

    # the same results against a reference they match within noise: the gate passes
    within = {key: 0.3 for key in shift}
    plant_reference(workdir, planted, within)
    result = snakemake(workdir, "compare")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "CartPole-v1/ppo: within noise" in result.stdout
    assert "run_cell" not in planned_jobs(result.stdout)


@pytest.mark.slow
def test_earlier_results_folder_as_reference_without_the_gate(built, tmp_path):
    workdir = copy_of(built, tmp_path / "work")
    configure(workdir, compare_reference=str(built / "results"))
    result = snakemake(workdir, "compare")
    assert result.returncode == 0, result.stdout[-3000:]
    comparison = json.loads((workdir / "results/compare.json").read_text())
    # the same runs: zero difference, sessions on both sides
    for cell in comparison["cells"]:
        assert cell["verdict"] == WITHIN_NOISE
        assert cell["difference"] == pytest.approx(0.0, abs=1e-9)
        assert cell["basis"].startswith("CI of the difference of session means")
