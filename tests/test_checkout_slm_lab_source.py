"""SLM-Lab's whole repository as the checkout: every one of its 292 result rows plans (or is
listed with SLM-Lab's own reason) and every planned row's spec passes the validate_spec step.

Needs SLM-Lab's whole source (env SLM_BENCH_SLM_LAB_SRC, else ../shared/slm-lab next to the
project); skips with the reason when it is absent. The tree is copied first: nothing here
writes into it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc
from slm_bench.formats.naming import run_name
from slm_bench.formats.spec import check_env_name, resolve_spec
from slm_bench.matrix.config import build_matrix, load_config
from slm_bench.steps import validate_spec

SLM_LAB_SRC = Path(
    os.environ.get("SLM_BENCH_SLM_LAB_SRC")
    or Path(__file__).resolve().parents[2] / "shared" / "slm-lab"
)
RESULT_ROWS = 292


def _build_matrix_honours_row_budgets() -> bool:
    """Whether config.build_matrix runs a derived row at its ``max_frame`` (its budget)."""
    config = load_config(
        {
            "envs": {
                "X-v1": {
                    "settings": {
                        "max_frame": "1e6",
                        "num_envs": 1,
                        "max_session": 1,
                        "log_frequency": 100,
                    },
                    "algorithms": {"a": {"label": "A", "spec_file": "s.yaml", "spec_name": "s"}},
                }
            }
        }
    )
    config["envs"]["X-v1"]["algorithms"]["a"]["max_frame"] = 1000  # as derive_envs writes it
    try:
        cell = next(iter(build_matrix(config).cells.values()))
    except BenchError:
        return False
    return cell.settings.max_frame == 1000 and cell.sets["max_frame"] == "1000"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    if not (SLM_LAB_SRC / "docs" / "BENCHMARKS.md").is_file():
        pytest.skip(f"SLM-Lab's source tree is not at {SLM_LAB_SRC} (set SLM_BENCH_SLM_LAB_SRC)")
    root = tmp_path_factory.mktemp("checkout") / "SLM-Lab"
    shutil.copytree(SLM_LAB_SRC, root, ignore=shutil.ignore_patterns("data", ".venv*", "*.pyc"))
    return root


@pytest.mark.slow
@pytest.mark.xfail(
    not _build_matrix_honours_row_budgets(),
    strict=True,
    reason="config.build_matrix does not yet run a row at its documented budget (row max_frame)",
)
def test_every_row_of_slm_labs_file_plans_and_validates(checkout, tmp_path):
    config = load_config({"checkout": {"root": str(checkout)}})
    matrix = build_matrix(config)
    doc = BenchmarksDoc.read(checkout / "docs" / "BENCHMARKS.md")
    assert len(doc.result_rows()) == RESULT_ROWS
    assert doc.warnings() == []
    listed = [row for row in matrix.skipped if row.env_id]
    assert len(matrix.cells) + len(listed) == RESULT_ROWS
    assert listed == []  # SLM-Lab itself would reject none of them

    budgeted = [cell for cell in matrix.cells.values() if cell.sets["max_frame"] != str(
        matrix.envs[cell.env].settings.max_frame
    )]  # fmt: skip
    # MuJoCo SAC/CrossQ (22) and PPO InvertedPendulum (1) from the MAX_FRAME table; Atari SAC
    # (57) and CrossQ (6) from the spec list's max_frame=2e6.
    assert len(budgeted) == 86

    # The run names the plan gives match the table's own folder names (SLM-Lab's timestamped
    # `{spec_name}[_{envshort}]`), except the 67 rows SLM-Lab's maintainers renamed by hand.
    folders = {(r.env, r.spec_name): r.hf_folder for r in doc.result_rows()}
    named = sum(
        folders[(cell.env_id, cell.spec_name)].rsplit("_", 4)[0]
        == run_name(cell.spec_name, cell.sets)
        for cell in matrix.cells.values()
    )
    assert named == 225

    failures = []
    for cell in matrix.cells.values():
        out = tmp_path / cell.env / cell.algo / "spec.json"
        try:
            validate_spec(cell, config["max_frame_policy"], out, lambda _message: None)
            body = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
            check_env_name(body, cell.env_id, f"{cell.spec_file}: {cell.spec_name}")
        except BenchError as error:
            failures.append(f"{cell.env_id} {cell.spec_name}: {error}")
    assert failures == []
    assert len(list(tmp_path.rglob("spec.json"))) == RESULT_ROWS


@pytest.mark.xfail(
    not _build_matrix_honours_row_budgets(),
    strict=True,
    reason="config.build_matrix does not yet run a row at its documented budget (row max_frame)",
)
def test_an_older_layout_file_plans_and_validates_against_slm_labs_specs(checkout, tmp_path):
    """The older-layout fixture (HF Repo tables, Score tables one per algorithm, a frame-budget
    note, an older MAX_FRAME table) as a checkout's file: its 9 readable rows plan, each at the
    budget the file documents, and validate against SLM-Lab's own (older) spec files."""
    older = Path(__file__).resolve().parent / "fixtures" / "benchmarks" / "older_layouts.md"
    (tmp_path / "docs").mkdir()
    shutil.copyfile(older, tmp_path / "docs" / "BENCHMARKS.md")
    (tmp_path / "slm_lab").symlink_to(checkout / "slm_lab")
    config = load_config({"checkout": {"root": str(tmp_path)}})
    matrix = build_matrix(config)
    assert [row.env_id for row in matrix.skipped] == ["", ""]  # the two unread tables
    frames = {(c.env_id, c.spec_name): c.settings.max_frame for c in matrix.cells.values()}
    assert frames == {
        ("CartPole-v1", "a2c_gae_cartpole"): 200_000,
        ("CartPole-v1", "ppo_cartpole"): 200_000,
        ("CartPole-v1", "sac_cartpole"): 200_000,
        ("Hopper-v5", "ppo_hopper"): 4_000_000,
        ("Hopper-v5", "sac_hopper"): 2_000_000,  # its own value, inside the note's 1-2M
        ("ALE/Breakout-v5", "ppo_atari"): 10_000_000,
        ("ALE/Breakout-v5", "sac_atari"): 2_000_000,  # the spec list's max_frame=2e6
        ("ALE/Pong-v5", "ppo_atari"): 10_000_000,
        ("ALE/Pong-v5", "sac_atari"): 2_000_000,
    }
    for cell in matrix.cells.values():
        out = tmp_path / "results" / cell.env / cell.algo / "spec.json"
        validate_spec(cell, config["max_frame_policy"], out, lambda _message: None)
