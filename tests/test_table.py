"""BENCHMARKS.md model: byte-exact round trip, structure, and surgical edits."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path

import pytest

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import (
    FORM_GROUP,
    FORM_SECTION,
    RESULT_HEADER,
    RESULT_SEPARATOR,
    TABLE_GROUPED,
    TABLE_IMAGE_GRID,
    TABLE_OTHER,
    TABLE_RESULT,
    BenchmarksDoc,
    ResultRow,
    new_document,
)
from slm_bench.formats.naming import algorithm_from_spec_name, dataset_url, hf_link, plot_png_name
from slm_bench.formats.status_rule import STATUS_CLOSE

GROUPED = ("ENV", "MA", "SPEC_NAME", "HF Data")  # a shared table's columns

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
SLM_LAB = Path(__file__).resolve().parent / "fixtures" / "slm-lab"
REAL = SLM_LAB / "BENCHMARKS.md"
HF = "https://huggingface.co/datasets/SLM-Lab/benchmark/tree/main/data/"
CARTPOLE_PPO = (
    "| PPO | ✅ | 498.94 | [slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml]"
    "(../slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml) | ppo_cartpole_arc | "
    "[ppo_cartpole_arc_2026_02_11_144029](https://huggingface.co/datasets/SLM-Lab/benchmark/"
    "tree/main/data/ppo_cartpole_arc_2026_02_11_144029) |"
)


def read_bytes_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def changed_lines(before: str, after: str) -> list[str]:
    """Diff lines ('+'/'-' prefixed) between two texts, without headers."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def row(algorithm: str, spec_name: str, score: float = 1.0, repo: str = "SLM-Lab/benchmark"):
    folder = f"{spec_name}_2026_04_01_000000"
    return ResultRow.build(
        algorithm,
        "✅",
        score,
        f"slm_lab/spec/test/{spec_name}.yaml",
        spec_name,
        folder,
        dataset_url(repo, folder),
    )


# ----------------------------------------------------------------------------- row format


def test_result_row_renders_slm_lab_row_exactly():
    built = ResultRow.build(
        "PPO",
        "✅",
        498.94,
        "slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml",
        "ppo_cartpole_arc",
        "ppo_cartpole_arc_2026_02_11_144029",
        dataset_url("SLM-Lab/benchmark", "ppo_cartpole_arc_2026_02_11_144029"),
    )
    assert built.render() == CARTPOLE_PPO
    assert built.ma == "498.94"
    assert built.spec_link == "../slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml"


def test_result_row_formats_and_plain_spec_and_empty_status():
    built = ResultRow.build("A2C", "", -820.7449, "a.yaml", "a2c_x", "f", "u", spec_link_prefix="")
    assert built.render() == "| A2C | | -820.74 | [a.yaml](a.yaml) | a2c_x | [f](u) |"
    plain = replace(built, spec_link=None, status=STATUS_CLOSE)
    assert plain.render() == "| A2C | ⚠️ | -820.74 | a.yaml | a2c_x | [f](u) |"
    assert "\ufe0f" in plain.render()
    assert replace(plain, env="ALE/Pong-v5").render_as(GROUPED, True) == (
        "| ALE/Pong-v5 | -820.74 | a2c_x | [f](u) |"
    )
    assert plain.render_as(GROUPED, False) == "| | -820.74 | a2c_x | [f](u) |"


def test_result_row_rejects_cells_that_would_break_the_table():
    with pytest.raises(BenchError, match="spec_name"):
        ResultRow.build("PPO", "", 1.0, "a.yaml", "bad|name", "f", "u")
    with pytest.raises(BenchError, match="ma"):
        ResultRow.build("PPO", "", "high", "a.yaml", "ok", "f", "u")


def test_link_helpers():
    assert hf_link("F", "https://x/F") == "[F](https://x/F)"
    assert dataset_url("SLM-Lab/benchmark-dev", "ppo_x") == (
        "https://huggingface.co/datasets/SLM-Lab/benchmark-dev/tree/main/data/ppo_x"
    )
    assert dataset_url("o/r", "f", endpoint="http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/datasets/o/r/tree/main/data/f"
    )
    assert plot_png_name("ALE/Pong-v5") == "Pong-v5_multi_trial_graph_mean_returns_ma_vs_frames.png"
    assert plot_png_name("playground/CheetahRun").startswith("CheetahRun_multi_trial")
    assert [
        algorithm_from_spec_name(name)
        for name in ("ddqn_per_acrobot_arc", "dqn_x", "a2c_gae_atari_arc", "crossq_atari", "x")
    ] == ["DDQN+PER", "DQN", "A2C", "CrossQ", ""]


# ------------------------------------------------------------------- the real BENCHMARKS.md


@pytest.fixture(scope="module")
def real_text() -> str:
    return read_bytes_text(REAL)


@pytest.fixture
def real(real_text) -> BenchmarksDoc:
    return BenchmarksDoc.parse(real_text)


def test_real_round_trip_is_byte_identical(real_text, real):
    assert real.render() == real_text
    assert real.render().encode("utf-8") == REAL.read_bytes()
    assert BenchmarksDoc.read(REAL).render() == real_text


def test_real_counts_match_independent_counts(real_text, real):
    lines = real_text.split("\n")
    # Independent counts: a table starts at a '|' line whose predecessor is not one.
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
    ]
    assert len(starts) == 31
    headers = [lines[i] for i in starts]
    assert headers.count(RESULT_HEADER) == 16
    assert headers.count("| ENV | MA | SPEC_NAME | HF Data |") == 4
    assert sum(not h.replace("|", "").strip() for h in headers) == 4
    hf_rows = [
        line for line in lines if line.startswith("|") and "](https://huggingface.co/" in line
    ]
    assert len(hf_rows) == 292
    readme = (SLM_LAB / "README.md").read_text(encoding="utf-8")
    assert "31 tables, 292 result rows" in readme
    env_headings = [line for line in lines if re.match(r"^#### \d+\.\d+ \S+$", line)]
    # First rows of shared-table groups (MA numeric; the lambda table shows **bold** or '-').
    group_firsts = [
        line for line in lines if re.match(r"^\| (ALE|playground)/\S+ \| -?[\d.]+ \| ", line)
    ]
    assert (len(env_headings), len(group_firsts)) == (16, 111)

    tables = real.tables()
    assert [t.start for t in tables] == starts
    kinds = [t.kind for t in tables]
    assert kinds.count(TABLE_RESULT) == 16
    assert kinds.count(TABLE_GROUPED) == 4
    assert kinds.count(TABLE_IMAGE_GRID) == 4
    assert kinds.count(TABLE_OTHER) == 7
    rows = real.result_rows()
    assert len(rows) == 292
    assert sum(1 for t in tables if t.kind == TABLE_RESULT for _ in t.row_indexes) == 61
    assert all(r.env for r in rows)
    assert all(r.hf_url.endswith("/" + r.hf_folder) for r in rows)
    sections = real.env_sections()
    assert len(sections) == 127
    assert sum(s.form == FORM_SECTION for s in sections) == 16
    assert sum(s.form == FORM_GROUP for s in sections) == 111
    assert sum(len(s.rows) for s in sections) == 292
    assert real.phases() == [
        "Phase 1: Classic Control",
        "Phase 2: Box2D",
        "Phase 3: MuJoCo",
        "Phase 4: Atari",
        "Phase 5: MuJoCo Playground (JAX/MJX GPU-Accelerated)",
    ]
    atari = [s for s in sections if s.phase == "Phase 4: Atari"]
    assert len(atari) == 57
    assert sum(len(s.rows) for s in atari) == 177


def test_real_sections_carry_docs_settings_target_and_plot(real):
    cartpole = real.find_env("CartPole-v1")
    assert cartpole.form == FORM_SECTION
    assert cartpole.number == "1.1"
    assert cartpole.phase == "Phase 1: Classic Control"
    assert cartpole.target == "> 400"
    assert cartpole.settings_line == (
        "**Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"
    )
    assert not cartpole.settings_inherited
    assert cartpole.plot_embed == (
        "![CartPole-v1](plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png)"
    )
    assert [r.algorithm for r in cartpole.rows] == [
        "REINFORCE", "SARSA", "DQN", "DDQN+PER", "A2C", "PPO", "SAC", "CrossQ"
    ]  # fmt: skip
    assert cartpole.rows[5].render() == CARTPOLE_PPO
    assert cartpole.rows[2].status == STATUS_CLOSE
    assert real.find_env("Pendulum-v1").rows[0].status == ""
    assert real.find_env("Hopper-v5").target == "~ 2000"
    assert real.find_env("InvertedDoublePendulum-v5").target == "~8000"
    assert real.find_env("Walker2d-v5").number == "3.11"

    pong = real.find_env("ALE/Pong-v5")
    assert pong.form == FORM_GROUP
    assert pong.settings_inherited and pong.docs_inherited
    assert pong.settings_line.endswith("log_frequency 10000")
    assert pong.target is None
    assert [(r.algorithm, r.spec_name) for r in pong.rows] == [
        ("PPO", "ppo_atari_lam85_arc"),
        ("SAC", "sac_atari_arc"),
        ("A2C", "a2c_gae_atari_arc"),
        ("CrossQ", "crossq_atari"),
    ]
    assert {r.env for r in pong.rows} == {"ALE/Pong-v5"}
    assert pong.rows[0].spec_file == "slm_lab/spec/benchmark_arc/ppo/ppo_atari_arc.yaml"
    assert pong.rows[3].spec_link == "../slm_lab/spec/benchmark/crossq/crossq_atari.yaml"
    assert pong.plot_embed.startswith("![Pong](plots/Pong-v5_multi_trial")

    cheetah = real.find_env("playground/CheetahRun")
    assert cheetah.subphase == "Phase 5.1: DM Control Suite (25 envs)"
    assert cheetah.docs_line is None
    assert cheetah.settings_line == "**Settings**: max_frame 100M | num_envs 2048 | max_session 4"
    assert cheetah.rows[0].spec_file == "slm_lab/spec/benchmark_arc/ppo/ppo_playground.yaml"
    # The one env of the real file whose plot is missing from its image grid.
    assert [s.env_id for s in real.env_sections() if s.plot_embed is None] == [
        "playground/G1JoystickRoughTerrain"
    ]
    assert real.find_env("Pong") is None
    assert real.find_env("1.1") is None


def test_real_update_one_row_changes_exactly_one_line(real_text, real):
    others = [t.text for t in real.tables() if t.kind != TABLE_RESULT]
    new = row("PPO", "ppo_cartpole_arc", 499.5, repo="SLM-Lab/benchmark-dev")
    real.upsert_row("CartPole-v1", new)
    after = real.render()
    diff = changed_lines(real_text, after)
    assert diff == ["-" + CARTPOLE_PPO, "+" + new.render()]
    assert real_text.count("\n") == after.count("\n")
    assert real.find_env("CartPole-v1").rows[5].ma == "499.50"
    assert [t.text for t in real.tables() if t.kind != TABLE_RESULT] == others
    real.upsert_row("CartPole-v1", new)  # same row again: no change at all
    assert real.render() == after


@pytest.mark.parametrize(
    ("env_id", "algorithm", "before_algorithm"),
    [
        ("CartPole-v1", "TD3", None),  # unknown label: after CrossQ, the last row
        ("Acrobot-v1", "SARSA", "DQN"),  # before every row
        ("Pendulum-v1", "DQN", "A2C"),  # in the middle
        ("LunarLander-v3", "REINFORCE", "DQN"),
    ],
)
def test_real_insert_row_adds_one_line_in_slm_lab_order(
    real_text, real, env_id, algorithm, before_algorithm
):
    section = real.find_env(env_id)
    count = len(section.rows)
    new = row(algorithm, f"{algorithm.lower()}_new")
    real.upsert_row(env_id, new)
    after = real.render()
    assert changed_lines(real_text, after) == ["+" + new.render()]
    section = real.find_env(env_id)
    assert len(section.rows) == count + 1
    labels = [r.algorithm for r in section.rows]
    position = labels.index(algorithm)
    if before_algorithm is None:
        assert position == count
        assert real.lines[section.row_lines[-1] + 1] == ""
    else:
        assert labels[position + 1] == before_algorithm


def test_real_rewrite_links_touches_only_result_rows(real_text, real):
    row_lines = {i for s in real.env_sections() for i in s.row_lines}
    others = [t.text for t in real.tables() if t.kind not in (TABLE_RESULT, TABLE_GROUPED)]
    assert real.rewrite_links("SLM-Lab/benchmark", "SLM-Lab/benchmark-dev") == 292
    before_lines, after_lines = real_text.split("\n"), real.render().split("\n")
    assert len(before_lines) == len(after_lines)
    changed = {i for i, (a, b) in enumerate(zip(before_lines, after_lines, strict=True)) if a != b}
    assert changed == row_lines
    for i in changed:
        assert after_lines[i] == before_lines[i].replace(
            "/datasets/SLM-Lab/benchmark/", "/datasets/SLM-Lab/benchmark-dev/"
        )
    # The Usage section's example link and the other tables stay as they were.
    assert "[FOLDER](https://huggingface.co/datasets/SLM-Lab/benchmark/tree/main/data/FOLDER)" in (
        real.render()
    )
    assert [t.text for t in real.tables() if t.kind not in (TABLE_RESULT, TABLE_GROUPED)] == others
    assert all("benchmark-dev" in r.hf_url for r in real.result_rows())
    assert real.rewrite_links("SLM-Lab/benchmark", "SLM-Lab/benchmark-dev") == 0
    assert real.rewrite_links("SLM-Lab/benchmark-dev", "SLM-Lab/benchmark") == 292
    assert real.render() == real_text


def test_real_group_upsert_keeps_env_cell_and_group_order(real_text, real):
    pong = real.find_env("ALE/Pong-v5")
    first, sac_line, last = pong.row_lines[0], pong.row_lines[1], pong.row_lines[-1]
    sac = replace(row("SAC", "sac_atari_arc", 12.0), status="")
    real.upsert_row("ALE/Pong-v5", sac)
    ppo = row("PPO", "ppo_atari_lam85_arc", 17.0)
    real.upsert_row("ALE/Pong-v5", ppo)
    dqn = row("DQN", "dqn_atari", 3.0)
    real.upsert_row("ALE/Pong-v5", dqn)
    lines = real.lines
    assert lines[first].startswith("| ALE/Pong-v5 | 17.00 | ppo_atari_lam85_arc | [")
    assert lines[sac_line].startswith("| | 12.00 | sac_atari_arc | [")
    assert lines[last + 1] == "| | 3.00 | dqn_atari | [dqn_atari_2026_04_01_000000](" + (
        HF + "dqn_atari_2026_04_01_000000) |"
    )
    assert lines[last + 2].startswith("| ALE/Pooyan-v5 |")
    assert len(changed_lines(real_text, real.render())) == 5  # 2 replaced (4) + 1 added
    assert [r.algorithm for r in real.find_env("ALE/Pong-v5").rows][-1] == "DQN"
    assert len(real.result_rows()) == 293


def test_real_ensure_plot_embed_keeps_existing_and_fills_grid_gap(real_text, real):
    real.ensure_plot_embed("CartPole-v1", "other.png")
    real.ensure_plot_embed("ALE/Pong-v5", "other.png")
    assert real.render() == real_text
    env_id = "playground/G1JoystickRoughTerrain"
    real.ensure_plot_embed(env_id, plot_png_name(env_id))
    image = f"![G1JoystickRoughTerrain](plots/{plot_png_name(env_id)})"
    assert changed_lines(real_text, real.render()) == [f"+| {image} | | |"]
    assert real.find_env(env_id).plot_embed == image
    assert real.tables()[[t.kind for t in real.tables()].index(TABLE_IMAGE_GRID)].start == 672


def test_real_ensure_env_existing_is_unchanged_and_new_goes_to_its_phase(real_text, real):
    cartpole = "**Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"
    assert real.ensure_env("CartPole-v1", "**Docs**: x", cartpole).number == "1.1"
    # the same Settings in other notation; Atari's is the phase's line
    atari = "max_frame 1e7 | num_envs 16 | max_session 4 | log_frequency 1e4"
    assert real.ensure_env("ALE/Pong-v5", "x", atari, "Atari").form == FORM_GROUP
    assert real.render() == real_text
    section = real.ensure_env(
        "MountainCar-v0", "**Docs**: MountainCar", "max_frame 2e5", "Classic Control"
    )
    assert (section.number, section.phase) == ("1.4", "Phase 1: Classic Control")
    expected = real_text.split("\n")
    pendulum_plot = expected.index(real.find_env("Pendulum-v1").plot_embed)
    expected[pendulum_plot + 1 : pendulum_plot + 1] = [
        "",
        "#### 1.4 MountainCar-v0",
        "",
        "**Docs**: MountainCar",
        "",
        "**Settings**: max_frame 2e5",
        "",
        RESULT_HEADER,
        RESULT_SEPARATOR,
    ]
    assert real.render() == "\n".join(expected)
    assert real.lines[section.table.end : section.table.end + 2] == ("", "### Phase 2: Box2D")
    with pytest.raises(BenchError, match="needs a phase"):
        real.ensure_env("Foo-v0", "", "")


def test_real_upsert_unknown_env_is_a_bench_error(real):
    with pytest.raises(BenchError, match="'Nope-v0' has no results section"):
        real.upsert_row("Nope-v0", row("PPO", "ppo_nope"))


# ----------------------------------------------------------------------- own fixtures


def test_atari_group_fixture():
    text = read_bytes_text(FIXTURES / "atari_groups.md")
    doc = BenchmarksDoc.parse(text)
    assert doc.render() == text
    assert [t.kind for t in doc.tables()] == [TABLE_GROUPED, TABLE_IMAGE_GRID, TABLE_OTHER]
    assert [s.env_id for s in doc.env_sections()] == [
        "ALE/Pong-v5",
        "ALE/Breakout-v5",
        "ALE/Qbert-v5",
    ]
    rows = doc.result_rows()
    assert [(r.env, r.algorithm) for r in rows] == [
        ("ALE/Pong-v5", "PPO"),
        ("ALE/Pong-v5", "SAC"),
        ("ALE/Pong-v5", "A2C"),
        ("ALE/Breakout-v5", "PPO"),
        ("ALE/Qbert-v5", "PPO"),
    ]
    assert rows[2].spec_file == "slm_lab/spec/benchmark_arc/a2c/a2c_atari_arc.yaml"
    assert (rows[4].hf_folder, rows[4].hf_url) == ("-", "")  # not uploaded yet
    pong = doc.find_env("ALE/Pong-v5")
    assert pong.settings_inherited and pong.phase == "Phase 4: Atari"
    # The '# PPO (10M frames)' line sits in a code fence: not a heading, so Atari stays one phase.
    assert doc.phases() == ["Phase 4: Atari"]

    breakout = doc.find_env("ALE/Breakout-v5")
    assert breakout.plot_embed is None
    doc.upsert_row("ALE/Breakout-v5", row("SAC", "sac_atari_arc", 20.23))
    doc.upsert_row("ALE/Qbert-v5", row("PPO", "ppo_atari_arc", 15000))
    doc.ensure_plot_embed("ALE/Breakout-v5", plot_png_name("ALE/Breakout-v5"))
    doc.ensure_plot_embed("ALE/Qbert-v5", plot_png_name("ALE/Qbert-v5"))
    pong_img = "![Pong](plots/Pong-v5_multi_trial_graph_mean_returns_ma_vs_frames.png)"
    breakout_img = "![Breakout](plots/Breakout-v5_multi_trial_graph_mean_returns_ma_vs_frames.png)"
    qbert_img = "![Qbert](plots/Qbert-v5_multi_trial_graph_mean_returns_ma_vs_frames.png)"
    expected = text.split("\n")
    breakout_at = expected.index(next(line for line in expected if "ALE/Breakout" in line))
    expected[breakout_at + 1 : breakout_at + 2] = [
        "| | 20.23 | sac_atari_arc | [sac_atari_arc_2026_04_01_000000](" + HF
        + "sac_atari_arc_2026_04_01_000000) |",
        "| ALE/Qbert-v5 | 15000.00 | ppo_atari_arc | [ppo_atari_arc_2026_04_01_000000](" + HF
        + "ppo_atari_arc_2026_04_01_000000) |",
    ]  # fmt: skip
    grid_row = expected.index("| " + pong_img + " | |")
    expected[grid_row : grid_row + 1] = [
        "| " + pong_img + " | " + breakout_img + " |",
        "| " + qbert_img + " | |",
    ]
    assert doc.render() == "\n".join(expected)
    # The lambda-comparison table (ENV column, first-row-only env) is not a result table.
    assert doc.tables()[-1].text.endswith("| | 1.00 | - |")


def test_phase_level_settings_inheritance_and_multi_row_algorithms():
    text = read_bytes_text(FIXTURES / "phase_settings.md")
    doc = BenchmarksDoc.parse(text)
    assert doc.render() == text
    ant, hopper, walker = doc.env_sections()
    assert not ant.settings_inherited and ant.settings_line.startswith(
        "**Settings**: max_frame 10e6"
    )
    assert hopper.settings_inherited
    assert hopper.settings_line == (
        "**Settings**: max_frame 4e6-10e6 | num_envs 16 | max_session 4 | log_frequency 1e4"
    )
    assert not hopper.docs_inherited and hopper.target == "~ 2000"
    assert hopper.rows[1].spec_link is None
    assert hopper.rows[1].render() == doc.lines[hopper.row_lines[1]]
    assert walker.rows == [] and walker.plot_embed is None
    assert [t.kind for t in doc.tables()].count(TABLE_OTHER) == 1  # the Progress table

    # Two PPO rows: the spec_name picks which line is replaced, or a new line is added.
    doc.upsert_row("Hopper-v5", row("PPO", "ppo_mujoco_arc", 1300))
    assert doc.find_env("Hopper-v5").rows[1].ma == "1300.00"
    assert doc.find_env("Hopper-v5").rows[0].ma == "1653.74"
    doc.upsert_row("Hopper-v5", row("PPO", "ppo_hopper_v2", 1400))
    doc.upsert_row("Hopper-v5", row("A2C", "a2c_hopper", 10))
    assert [(r.algorithm, r.spec_name) for r in doc.find_env("Hopper-v5").rows] == [
        ("A2C", "a2c_hopper"),
        ("PPO", "ppo_hopper_arc"),
        ("PPO", "ppo_mujoco_arc"),
        ("PPO", "ppo_hopper_v2"),
    ]
    assert doc.lines[:8] == tuple(text.split("\n")[:8])  # Progress table untouched


def test_missing_plot_embed_is_added_after_the_table():
    text = read_bytes_text(FIXTURES / "phase_settings.md")
    doc = BenchmarksDoc.parse(text)
    doc.ensure_plot_embed("Hopper-v5", plot_png_name("Hopper-v5"))
    embed = "![Hopper-v5](plots/Hopper-v5_multi_trial_graph_mean_returns_ma_vs_frames.png)"
    hopper = doc.find_env("Hopper-v5")
    expected = text.split("\n")
    expected[hopper.row_lines[-1] + 1 : hopper.row_lines[-1] + 1] = ["", embed]
    assert doc.render() == "\n".join(expected)
    assert hopper.plot_embed == embed
    i = doc.lines.index(embed)
    assert doc.lines[i - 2 : i + 3] == (
        doc.lines[hopper.row_lines[-1]],
        "",
        embed,
        "",
        "#### 3.3 Walker2d-v5",
    )
    # Walker2d's empty table ends the file: the embed goes after it, the file ends as before.
    doc.upsert_row("Walker2d-v5", row("SAC", "sac_walker2d_arc", 3123.66))
    doc.ensure_plot_embed("Walker2d-v5", plot_png_name("Walker2d-v5"))
    assert doc.render().endswith(
        "sac_walker2d_arc_2026_04_01_000000) |\n\n"
        "![Walker2d-v5](plots/Walker2d-v5_multi_trial_graph_mean_returns_ma_vs_frames.png)\n"
    )
    before = doc.render()
    doc.ensure_plot_embed("Walker2d-v5", "another.png")
    assert doc.render() == before


def test_crlf_file_round_trips_and_edits_keep_crlf(tmp_path):
    raw = (FIXTURES / "crlf.md").read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    doc = BenchmarksDoc.read(FIXTURES / "crlf.md")
    assert doc.render().encode("utf-8") == raw
    assert doc.find_env("CartPole-v1").rows[0].ma == "498.94"
    doc.upsert_row("CartPole-v1", row("DQN", "dqn_cartpole", 200))
    doc.ensure_env(
        "Acrobot-v1", "**Docs**: Acrobot", "**Settings**: max_frame 3e5", "Classic Control"
    )
    out = doc.write(tmp_path / "BENCHMARKS.md").read_bytes()
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert out.count(b"\r\n") == raw.count(b"\r\n") + 1 + 9
    assert b"| DQN | \xe2\x9c\x85 | 200.00 |" in out
    assert BenchmarksDoc.read(tmp_path / "BENCHMARKS.md").find_env("Acrobot-v1").number == "1.2"


def test_file_without_trailing_newline_stays_without_one():
    text = read_bytes_text(FIXTURES / "no_trailing_newline.md")
    assert not text.endswith("\n")
    doc = BenchmarksDoc.parse(text)
    assert doc.render() == text
    cartpole = doc.find_env("CartPole-v1")
    assert cartpole.docs_line is None and cartpole.target is None
    assert cartpole.rows[0].status == "⚠️"
    doc.upsert_row("CartPole-v1", row("PPO", "ppo_cartpole_arc", 498.94))
    rendered = doc.render()
    assert not rendered.endswith("\n")
    assert rendered == text + "\n" + row("PPO", "ppo_cartpole_arc", 498.94).render()
    doc.ensure_plot_embed("CartPole-v1", plot_png_name("CartPole-v1"))
    assert doc.render().endswith(
        " |\n\n![CartPole-v1](plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png)"
    )


def test_fenced_tables_and_headings_are_not_structure():
    text = (
        "# T\n\n## Results\n\n### Phase 1: Classic Control\n\n```md\n#### 1.9 Fake-v0\n\n"
        f"{RESULT_HEADER}\n{RESULT_SEPARATOR}\n| PPO | | 1 | a | b | c |\n```\n"
    )
    doc = BenchmarksDoc.parse(text)
    assert doc.tables() == [] and doc.env_sections() == [] and doc.render() == text


# ------------------------------------------------------------------------ new documents


def test_new_document_filled_renders_slm_lab_markdown_exactly():
    doc = new_document()
    assert doc.render() == "# SLM-Lab Benchmarks\n\n## Results\n"
    docs = (
        "**Docs**: [CartPole](https://gymnasium.farama.org/environments/classic_control/cart_pole/)"
        " | State: Box(4) | Action: Discrete(2) | Target reward MA > 400"
    )
    settings = "**Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500"
    section = doc.ensure_env("CartPole-v1", docs, settings, phase="Phase 1: Classic Control")
    assert (section.number, section.target, section.rows) == ("1.1", "> 400", [])
    ppo = ResultRow.build(
        "PPO",
        "✅",
        498.94,
        "slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml",
        "ppo_cartpole_arc",
        "ppo_cartpole_arc_2026_02_11_144029",
        dataset_url("SLM-Lab/benchmark", "ppo_cartpole_arc_2026_02_11_144029"),
    )
    dqn = row("DQN", "dqn_boltzmann_cartpole_arc", 239.94)
    doc.upsert_row("CartPole-v1", ppo)
    doc.upsert_row("CartPole-v1", dqn)
    doc.ensure_plot_embed("CartPole-v1", plot_png_name("CartPole-v1"))
    doc.ensure_env("Acrobot-v1", "", "max_frame 3e5 | num_envs 4", phase="Classic Control")
    doc.ensure_env("LunarLander-v3", "", "", phase="Box2D")
    assert doc.render() == (
        "# SLM-Lab Benchmarks\n"
        "\n"
        "## Results\n"
        "\n"
        "### Phase 1: Classic Control\n"
        "\n"
        "#### 1.1 CartPole-v1\n"
        "\n"
        f"{docs}\n"
        "\n"
        f"{settings}\n"
        "\n"
        f"{RESULT_HEADER}\n"
        f"{RESULT_SEPARATOR}\n"
        f"{dqn.render()}\n"
        f"{CARTPOLE_PPO}\n"
        "\n"
        "![CartPole-v1](plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png)\n"
        "\n"
        "#### 1.2 Acrobot-v1\n"
        "\n"
        "**Settings**: max_frame 3e5 | num_envs 4\n"
        "\n"
        f"{RESULT_HEADER}\n"
        f"{RESULT_SEPARATOR}\n"
        "\n"
        "### Phase 2: Box2D\n"
        "\n"
        "#### 2.1 LunarLander-v3\n"
        "\n"
        f"{RESULT_HEADER}\n"
        f"{RESULT_SEPARATOR}\n"
    )
    reparsed = BenchmarksDoc.parse(doc.render())
    assert [(s.env_id, s.number, s.phase) for s in reparsed.env_sections()] == [
        ("CartPole-v1", "1.1", "Phase 1: Classic Control"),
        ("Acrobot-v1", "1.2", "Phase 1: Classic Control"),
        ("LunarLander-v3", "2.1", "Phase 2: Box2D"),
    ]
    assert reparsed.result_rows() == doc.result_rows()


def test_new_document_without_phases_and_bad_inputs(tmp_path):
    doc = new_document("My Benchmarks")
    doc.ensure_env("CartPole-v1", "", "max_frame 2e5")
    doc.upsert_row("CartPole-v1", row("PPO", "ppo_cartpole"))
    assert doc.render().startswith("# My Benchmarks\n\n## Results\n\n#### 1 CartPole-v1\n\n")
    assert doc.find_env("CartPole-v1").phase is None
    with pytest.raises(BenchError, match="env id"):
        doc.ensure_env("Bad Env", "", "")
    with pytest.raises(BenchError, match="owner/name"):
        doc.rewrite_links("benchmark", "SLM-Lab/benchmark-dev")
    with pytest.raises(BenchError, match="file not found"):
        BenchmarksDoc.read(tmp_path / "missing.md")
    no_results = BenchmarksDoc.parse("# Only a title\n")
    no_results.ensure_env("CartPole-v1", "", "", phase="Classic Control")
    assert no_results.render() == (
        "# Only a title\n\n## Results\n\n### Phase 1: Classic Control\n\n#### 1.1 CartPole-v1\n\n"
        f"{RESULT_HEADER}\n{RESULT_SEPARATOR}\n"
    )


# ------------------------------------------------------------- layouts of older versions

OLDER = FIXTURES / "older_layouts.md"


def test_older_layouts_round_trip_and_read_every_row():
    """Per-env tables ending in HF Repo, Atari tables with a Score column and one row per game
    (one table per algorithm, so an env has a section per table), and a ❌ Failed legend."""
    text = read_bytes_text(OLDER)
    doc = BenchmarksDoc.parse(text, "older.md")
    assert doc.render() == text
    assert [t.kind for t in doc.tables()] == [
        TABLE_OTHER,  # Progress
        TABLE_RESULT,  # CartPole, HF Repo
        TABLE_OTHER,  # MuJoCo reproduce table (MAX_FRAME)
        TABLE_RESULT,  # a result table under the phase, outside any env section
        TABLE_RESULT,  # Hopper, HF Repo
        TABLE_GROUPED,  # Atari PPO, Score
        TABLE_GROUPED,  # Atari SAC, Score
        TABLE_OTHER,  # an unknown layout holding results
    ]
    cartpole = doc.find_env("CartPole-v1")
    assert [(r.algorithm, r.status, r.ma) for r in cartpole.rows] == [
        ("A2C", "❌", "212.40"),
        ("PPO", "✅", "495.62"),
        ("SAC", "✅", "414.97"),
    ]
    assert cartpole.rows[1].hf_folder == "ppo_cartpole_2026_02_08_230219"
    assert cartpole.plot_embed.startswith("![CartPole-v1 Multi-Trial Graph](./plots/")
    pong = [s for s in doc.env_sections() if s.env_id == "ALE/Pong-v5"]
    assert [(s.form, [(r.algorithm, r.ma, r.hf_folder) for r in s.rows]) for s in pong] == [
        (FORM_GROUP, [("PPO", "17", "ppo_atari_pong_2026_01_06_112515")]),
        (FORM_GROUP, [("SAC", "11", "-")]),
    ]
    assert len(doc.result_rows()) == 3 + 1 + 2 + 4  # the stray table's row is listed too
    assert doc.legend().failed == "❌"


def test_older_layouts_warn_with_line_numbers():
    doc = BenchmarksDoc.parse(read_bytes_text(OLDER), "older.md")
    warnings = doc.warnings()
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "older.md line 45: result table | Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | "
        "HF Repo | has 1 row(s) not under an env heading"
    )
    assert warnings[1].startswith(
        "older.md line 86: table | Game | Return | Spec | Folder | looks like results but is "
        "not a known layout"
    )
    assert doc.lines[44].startswith("| Algorithm |") and doc.lines[85].startswith("| Game |")


def test_real_file_has_no_unread_result_tables(real):
    assert real.warnings() == []
    assert real.legend().failed == ""


def test_older_layouts_are_edited_in_their_own_columns_and_symbols():
    text = read_bytes_text(OLDER)
    doc = BenchmarksDoc.parse(text)
    # A computed Failed (empty) is written with the file's own symbol, in the HF Repo table.
    doc.upsert_row("CartPole-v1", replace(row("A2C", "a2c_gae_cartpole", 250.5), status=""))
    doc.upsert_row("Hopper-v5", replace(row("SAC", "sac_hopper", 1700), status=STATUS_CLOSE))
    # Atari: the SAC row lives in the second table; one row per game keeps the env cell.
    doc.upsert_row("ALE/Pong-v5", row("SAC", "sac_atari", 12.5))
    doc.upsert_row("ALE/Pong-v5", row("A2C", "a2c_gae_atari", 9))
    changed = changed_lines(text, doc.render())
    folder = "_2026_04_01_000000"
    assert changed == [
        "-" + text.split("\n")[27],
        "+| A2C | ❌ | 250.50 | [slm_lab/spec/test/a2c_gae_cartpole.yaml](../slm_lab/spec/test/"
        f"a2c_gae_cartpole.yaml) | a2c_gae_cartpole | [a2c_gae_cartpole{folder}]({HF}"
        f"a2c_gae_cartpole{folder}) |",
        "-" + text.split("\n")[57],
        "+| SAC | ⚠️ | 1700.00 | [slm_lab/spec/test/sac_hopper.yaml](../slm_lab/spec/test/"
        f"sac_hopper.yaml) | sac_hopper | [sac_hopper{folder}]({HF}sac_hopper{folder}) |",
        # no table holds A2C: the new row goes after Pong's row in the first one
        f"+| ALE/Pong-v5 | 9.00 | a2c_gae_atari | [a2c_gae_atari{folder}]({HF}a2c_gae_atari"
        f"{folder}) |",
        "-| ALE/Pong-v5 | 11 | sac_atari | - |",
        f"+| ALE/Pong-v5 | 12.50 | sac_atari | [sac_atari{folder}]({HF}sac_atari{folder}) |",
    ]
    assert doc.render().split("\n")[74] == text.split("\n")[74]  # Pong's PPO row, untouched


# --------------------------------------------------------------- rows run under other Settings


def test_rows_run_under_other_settings_are_refused_not_landed(real_text, real):
    """A config whose env Settings differ from the file's never lands rows under its line."""
    with pytest.raises(BenchError) as info:
        real.ensure_env(
            "CartPole-v1", "**Docs**: x", "**Settings**: max_frame 1e4 | num_envs 4 | "
            "max_session 4 | log_frequency 500",
        )  # fmt: skip
    assert str(info.value) == (
        "BENCHMARKS.md: CartPole-v1: the rows were run with Settings 'max_frame 10000 | "
        "num_envs 4 | max_session 4 | log_frequency 500' but the table's Settings line says "
        "'max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500' (expected the same "
        "Settings; run with the file's Settings, or edit its Settings line by hand first)"
    )
    assert real.render() == real_text


def test_a_row_may_land_at_its_documented_budget_only(real_text, real):
    from slm_bench.formats.benchmarks_md import documented_frames
    from slm_bench.formats.settings import parse_settings_line

    budget_of = documented_frames  # the file's documented budgets are allowed

    mujoco = parse_settings_line("max_frame 10e6 | num_envs 16 | max_session 4 | log_frequency 1e4")
    sac = row("SAC", "sac_ant_arc", 5000)
    real.upsert_row(
        "Ant-v5", sac, run_settings=mujoco.with_budget(2_000_000), budget_of=budget_of
    )  # MAX_FRAME table
    assert real.find_env("Ant-v5").rows[1].ma == "5000.00"
    with pytest.raises(BenchError, match="sac_ant_arc: run with Settings 'max_frame 3e6 "):
        real.upsert_row(
            "Ant-v5", sac, run_settings=mujoco.with_budget(3_000_000), budget_of=budget_of
        )
    ppo = row("PPO", "ppo_ant_arc", 2500)
    real.upsert_row("Ant-v5", ppo, run_settings=mujoco, budget_of=budget_of)
    with pytest.raises(BenchError, match="Settings line says 'max_frame 10e6 | num_envs 16"):
        real.upsert_row(
            "Ant-v5", ppo, run_settings=replace(mujoco, num_envs=8), budget_of=budget_of
        )
    # Atari SAC at the phase's documented 2e6 (its spec list), in the shared table
    atari = parse_settings_line("max_frame 10e6 | num_envs 16 | max_session 4 | log_frequency 1e4")
    real.upsert_row(
        "ALE/Pong-v5",
        row("SAC", "sac_atari_arc", 11),
        atari.with_budget("2e6"),
        budget_of=budget_of,
    )
    changed = changed_lines(real_text, real.render())
    assert len(changed) == 6  # three rows replaced, nothing else
    # The edit reads no budgets itself: without a lookup only the Settings line is allowed.
    with pytest.raises(BenchError, match="sac_ant_arc: run with Settings 'max_frame 2e6 "):
        real.upsert_row("Ant-v5", sac, run_settings=mujoco.with_budget(2_000_000))
