"""Property: whatever text comes in as an env id, algorithm key, label or spec name, the plan
either refuses it with one line, or every path it plans stays under results/ and the table it
writes parses back to the same rows.

The matrix is built by ``load_config``/``build_matrix`` (what the Snakefile calls); the table is
rendered with slm_bench/formats/benchmarks_md as the table step does (new document, env section,
rows, plot) and parsed back. No Snakemake subprocess: each example takes milliseconds.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from snakemake.io import PeriodicityDetector

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc, ResultRow, new_document
from slm_bench.formats.naming import plot_png_name
from slm_bench.matrix.config import build_matrix, load_config
from slm_bench.matrix.identifiers import ALGO_KEY, ENV_ID, SPEC_NAME

PERIODIC = PeriodicityDetector()
SETTINGS = {"max_frame": 2000, "num_envs": 4, "max_session": 4, "log_frequency": 500}
# Files the rules write per cell, per env and per phase (rules/*.smk), relative to their folder.
CELL_FILES = (
    "spec.json", "run.json", "train.log", "upload.json", "metrics.json", "hf_data", "row.json",
    "failure.json", "stats.json",
)  # fmt: skip
ENV_FILES = ("BENCHMARKS.md", "BENCHMARKS.staged.md")
# What breaks paths, tables and command lines, mixed with ordinary id characters.
AWKWARD = "/.|\\\n\r\t $()`'\"-_+[]#*!<>:;,&~\u2028\x85\x00é"
TEXT = st.text(alphabet=st.sampled_from(AWKWARD) | st.sampled_from("aZ09"), max_size=12)


# Anything printable on one line but '|': what a label may hold (brackets, stars, backslashes).
TABLE_TEXT = (
    st.text(
        # Python's printable characters (the categories C and Z are not, but for the space)
        st.characters(
            exclude_categories=("C", "Z"), exclude_characters="|", include_characters=" "
        ),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
FIELDS = ("env_id", "algo_1", "algo_2", "label_1", "label_2", "spec_name")
VALID = {
    "env_id": st.from_regex(ENV_ID, fullmatch=True),
    "algo_1": st.from_regex(ALGO_KEY, fullmatch=True),
    "algo_2": st.from_regex(ALGO_KEY, fullmatch=True),
    "label_1": st.one_of(TABLE_TEXT, st.sampled_from(["PPO", "A2C", "DDQN+PER", "CrossQ"])),
    "label_2": TABLE_TEXT,
    "spec_name": st.from_regex(SPEC_NAME, fullmatch=True),
}


@st.composite
def inputs(draw, awkward: str | None) -> dict[str, str]:
    """Values of the valid shape, but for the ``awkward`` field: arbitrary text."""
    values: dict[str, str] = {}
    for name in FIELDS:
        if name == awkward:
            values[name] = draw(st.one_of(TEXT, TEXT, st.text(max_size=8)))
        elif name == "label_2":  # a repeated label is refused: only the awkward draw tries it
            values[name] = draw(VALID[name].filter(lambda label: label != values["label_1"]))
        else:
            values[name] = draw(VALID[name])
    return values


def _inside_results(path: str) -> bool:
    normal = os.path.normpath(path)
    return normal.startswith("results" + os.sep) and ".." not in normal.split(os.sep)


def planned_paths(matrix) -> list[str]:
    """Every output path the rules plan for this matrix (cells, env tables, plots, phases)."""
    paths = []
    for env, algo in matrix.cells:
        paths += [f"results/{env}/{algo}/{name}" for name in CELL_FILES]
        paths += [f"results/logs/run_cell/{env}/{algo}.log"]
    for env, entry in matrix.envs.items():
        paths += [f"results/{env}/{name}" for name in ENV_FILES]
        paths += [f"results/plots/{plot_png_name(entry.env_id)}"]
    paths += [f"results/phases/{slug}/BENCHMARKS.md" for slug in matrix.phases()]
    return paths


def render_and_parse(matrix) -> BenchmarksDoc:
    """The table as the table step writes it, read back from its text."""
    doc = new_document()
    for env, entry in matrix.envs.items():
        doc.ensure_env(
            entry.env_id,
            f"**Docs**: Target reward MA {entry.target}",
            f"**Settings**: {entry.settings.line()}",
            entry.phase,
        )
        for algo in entry.algos:
            cell = matrix.cell(env, algo)
            folder = f"{cell.spec_name}_2026_01_01_000000"
            row = ResultRow.build(
                cell.label, "✅", 450.5, cell.spec_file, cell.spec_name, folder, f"store/{folder}"
            )
            doc.upsert_row(entry.env_id, row)
        doc.ensure_plot_embed(entry.env_id, plot_png_name(entry.env_id))
    return BenchmarksDoc.parse(doc.render())


@pytest.mark.parametrize("awkward", [None, *FIELDS])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_refused_with_one_line_or_planned_inside_results_and_read_back(awkward, data):
    values = data.draw(inputs(awkward))
    spec_name = values["spec_name"]
    rows = {
        values[f"algo_{i}"]: {
            "label": values[f"label_{i}"],
            "spec_file": "specs/ppo_classic.yaml",
            "spec_name": spec_name,
        }
        for i in (1, 2)
    }
    env_id = values["env_id"]
    config = {"envs": {env_id: {"settings": SETTINGS, "target": "> 400", "algorithms": rows}}}
    try:
        matrix = build_matrix(load_config(config, "my.yaml"), "my.yaml")
    except BenchError as error:
        message = str(error)
        assert message.startswith("my.yaml: ")
        assert len(message.splitlines()) == 1 and message.isprintable(), repr(message)
        event("refused at plan time")
        return
    event("planned")

    for path in planned_paths(matrix):
        assert _inside_results(path), path
    for env, algo in matrix.cells:  # each wildcard value is one folder name
        assert "/" not in env and "/" not in algo and env not in (".", "..")
        # and one Snakemake builds (it drops a job whose wildcard value it finds periodic)
        assert PERIODIC.is_periodic(env) is None and PERIODIC.is_periodic(algo) is None

    parsed = render_and_parse(matrix)
    for env, entry in matrix.envs.items():
        section = parsed.find_env(entry.env_id)
        assert section is not None, entry.env_id
        written = [(row.algorithm, row.spec_file, row.spec_name) for row in section.rows]
        expected = []
        for algo in entry.algos:
            cell = matrix.cell(env, algo)
            expected.append((cell.label, cell.spec_file, cell.spec_name))
        assert sorted(written) == sorted(expected)
