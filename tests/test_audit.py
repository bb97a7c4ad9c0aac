"""The spec audit (rows at their frame budgets, specs for another env) and hand-set vs computed
Status, on SLM-Lab's real BENCHMARKS.md and the older-layout fixture."""

from __future__ import annotations

from pathlib import Path

import yaml

from slm_bench.formats.benchmarks_md import BenchmarksDoc
from slm_bench.formats.settings import parse_settings_line
from slm_bench.matrix.config import Cell, EnvEntry, Matrix
from slm_bench.trust.audit import audit_matrix, render_audit, status_differences

HERE = Path(__file__).resolve().parent
REAL = HERE / "fixtures" / "slm-lab" / "BENCHMARKS.md"
OLDER = HERE / "fixtures" / "benchmarks" / "older_layouts.md"
MUJOCO = parse_settings_line("max_frame 10e6 | num_envs 16 | max_session 4 | log_frequency 1e4")


def test_real_status_differences_under_the_legend_rule():
    differences = status_differences(BenchmarksDoc.read(REAL))
    assert ("CartPole-v1", "DQN", "239.94", "> 400", "Close", "Failed") in differences
    assert ("Acrobot-v1", "CrossQ", "-103.13", "> -100", "Solved", "Close") in differences
    assert ("Hopper-v5", "SAC", "1416.52", "~ 2000", "Close", "Failed") in differences
    # CrossQ CartPole 334.59 is 84% of > 400: ⚠️ by hand and by the legend rule
    assert not any(d[:2] == ("CartPole-v1", "CrossQ") for d in differences)
    assert len(differences) == 9
    baseline = status_differences(BenchmarksDoc.read(REAL), rule="baseline")
    assert len(baseline) == 8 and ("CartPole-v1", "CrossQ") not in [d[:2] for d in baseline]


def test_older_file_reads_its_own_failed_symbol():
    differences = status_differences(BenchmarksDoc.read(OLDER))
    # "❌" on A2C CartPole 212.40 is Failed, as computed: not a difference
    assert [d[:2] for d in differences] == [("Hopper-v5", "PPO"), ("Hopper-v5", "SAC")]
    assert differences[0][4:] == ("Solved", "Close")  # 1972.38 is below ~ 2000
    assert differences[1][4:] == ("Close", "Failed")  # 1511 is 76% of ~ 2000


def _cell(tmp_path: Path, name: str, env_name: str, frames: object, settings) -> Cell:
    path = tmp_path / f"{name}.yaml"
    body = {
        "agent": {"name": "SoftActorCritic", "algorithm": {"name": "SoftActorCritic"}},
        "env": {"name": env_name, "num_envs": 16, "max_frame": frames},
        "meta": {"max_session": 4, "log_frequency": 10000},
    }
    path.write_text(yaml.safe_dump({name: body}).replace("'${max_frame}'", "${max_frame}"))
    return Cell(
        env_id="Ant-v5",
        env="Ant-v5",
        algo=name,
        label="SAC",
        spec_file=f"{name}.yaml",
        spec_path=path,
        spec_name=name,
        sets={"max_frame": str(settings.max_frame)},
        settings=settings,
    )


def test_audit_shows_budget_rows_and_refuses_another_envs_spec(tmp_path):
    budget = MUJOCO.with_budget("2e6")
    cells = [
        _cell(tmp_path, "sac_ant_arc", "Ant-v5", "${max_frame}", budget),
        _cell(tmp_path, "sac_hardcoded", "Ant-v5", 2_000_000, budget),
        _cell(tmp_path, "sac_cartpole", "CartPole-v1", "${max_frame}", MUJOCO),
        _cell(tmp_path, "sac_undocumented", "Ant-v5", 3_000_000, MUJOCO),
    ]
    entry = EnvEntry("Ant-v5", "Ant-v5", MUJOCO, "> 2000", {}, "Phase 3: MuJoCo", ())
    matrix = Matrix(envs={"Ant-v5": entry}, cells={("Ant-v5", c.algo): c for c in cells})
    rows = {row.spec_name: row for row in audit_matrix(matrix, "warn")}
    note = "runs at its documented frame budget: -s max_frame=2e6 (Settings line: 10e6)"
    assert (rows["sac_ant_arc"].verdict, rows["sac_ant_arc"].detail) == ("budget", note)
    assert rows["sac_hardcoded"].verdict == "warning"
    assert rows["sac_hardcoded"].detail.startswith(note + "; sac_hardcoded.yaml: sac_hardcoded:")
    assert rows["sac_cartpole"].verdict == "error"
    assert "env.name is 'CartPole-v1' but the row is for 'Ant-v5'" in rows["sac_cartpole"].detail
    assert rows["sac_undocumented"].verdict == "mismatch"
    assert "max_frame: spec has 3000000, Settings line says 10e6" in rows["sac_undocumented"].detail
    report = render_audit(list(rows.values()), [("E", "A", "1.00", "> 2", "Close", "Failed")])
    assert "4 rows: 1 budget, 1 error, 1 mismatch, 1 warning." in report
    assert "| Env | Algorithm | MA | Target | Hand-set | Computed |" in report


def test_hand_set_symbols_outside_the_rule_are_shown_not_fatal():
    text = REAL.read_text(encoding="utf-8")
    text = text.replace("| PPO | ✅ | 498.94 |", "| PPO | 🔄 | 498.94 |")
    text = text.replace("| SAC | ✅ | 406.09 |", "| SAC | Skip | 406.09 |")
    differences = status_differences(BenchmarksDoc.parse(text))
    assert ("CartPole-v1", "PPO", "498.94", "> 400", "In progress", "Solved") in differences
    assert ("CartPole-v1", "SAC", "406.09", "> 400", "Skip", "Solved") in differences
