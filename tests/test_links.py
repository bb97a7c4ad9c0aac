"""Every link of every table slm-bench writes resolves from the file that holds it: the table in
results/, the per-env and per-phase tables, the published docs/BENCHMARKS.md (in the local
store, and the copy in results/publish/), and a checkout's docs/BENCHMARKS.md. The Hub's links
are resolved against the test Hub in tests/test_workflow_hf.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from link_check import check_links
from slm_lab_checkout import build_checkout
from workflow_helpers import copy_tree, snakemake, trained_tree

from slm_bench.matrix.config import build_matrix, load_config
from slm_bench.steps.tables import render_benchmarks
from slm_bench.stores import make_store

PHASE = "phase-1-classic-control"  # CartPole's phase (from its env id)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A tiny trained build (PPO, A2C on CartPole) with every table target and a local publish."""
    workdir = copy_tree(trained_tree(tmp_path_factory), tmp_path_factory.mktemp("links") / "w")
    targets = [
        "results/BENCHMARKS.md",
        "results/CartPole-v1/BENCHMARKS.md",
        f"results/phases/{PHASE}/BENCHMARKS.md",
        "publish",
    ]
    result = snakemake(workdir, *targets)
    assert result.returncode == 0, result.stdout[-4000:]
    return workdir


def tables(workdir: Path) -> dict[str, Path]:
    results = workdir / "results"
    return {
        "results/BENCHMARKS.md": results / "BENCHMARKS.md",
        "per env": results / "CartPole-v1" / "BENCHMARKS.md",
        "per phase": results / "phases" / PHASE / "BENCHMARKS.md",
        "published (public store)": results / "store/SLM-Lab/benchmark/docs/BENCHMARKS.md",
        "published (copy in results/publish)": results / "publish" / "BENCHMARKS.md",
        "published (staged)": results / "hf_data" / "docs" / "BENCHMARKS.md",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "results/BENCHMARKS.md",
        "per env",
        "per phase",
        "published (public store)",
        "published (copy in results/publish)",
        "published (staged)",
    ],
)
def test_every_relative_link_of_the_table_resolves_from_its_file(published, kind):
    path = tables(published)[kind]
    check = check_links(path)
    data = [href for href in check.checked if "/data/" in href or href.startswith("data/")]
    assert len(data) == 2, (kind, check.checked)  # PPO's and A2C's run folders, linked
    assert any(href.endswith(".png") for href in check.checked), check.checked  # the plot
    assert check.broken == [], "\n".join(check.broken)


def test_results_table_links_the_store_relative_to_results(published):
    text = (published / "results" / "BENCHMARKS.md").read_text()
    assert "](store/SLM-Lab/benchmark-dev/data/" in text
    assert "](results/store/" not in text  # the project-relative form, broken from results/
    public = (published / "results/store/SLM-Lab/benchmark/docs/BENCHMARKS.md").read_text()
    assert "](../data/" in public


def test_the_manifest_tells_data_folders_from_missing_files(published):
    manifest = (published / "results" / "publish" / "manifest.txt").read_text()
    assert "not found" not in manifest, manifest
    assert "rewrite  2 data link(s) -> SLM-Lab/benchmark/data in docs/BENCHMARKS.md" in manifest
    # a link to an existing folder is told apart from a missing file
    from slm_bench.stores.publish_links import plan_links

    (published / "results" / "somefolder").mkdir(exist_ok=True)
    text = "[a folder](somefolder) [gone](missing.md)"
    lines = [fix.line() for fix in plan_links(text, published / "results", None, "B.md")]
    assert lines == [
        "  unlink   somefolder (a folder, not published with docs/; its text stays)",
        "  unlink   missing.md (not found; its text stays)",
    ]


def test_a_checkouts_table_links_the_local_store_from_its_docs(tmp_path, monkeypatch):
    """The checkout's docs/BENCHMARKS.md, as update_checkout_docs writes it, links the local
    store's run folder relative to the checkout's docs/."""
    root = build_checkout(tmp_path / "SLM-Lab")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    config = {"checkout": {"root": str(root)}}
    load_config(config)
    matrix = build_matrix(config)
    cell = next(c for c in matrix.cells.values() if c.env_id == "CartPole-v1")
    env = matrix.envs[cell.env]
    store = make_store("local", {"root": "results/store"})
    folder = f"{cell.spec_name}_2026_01_01_000000"
    (store.folder_dir(folder) / "info").mkdir(parents=True)
    row = {
        "algorithm": cell.label,
        "status": "",
        "ma": 1.5,
        "spec_file": cell.spec_file,
        "spec_name": cell.spec_name,
        "hf_folder": folder,
        "hf_url": store.url(folder),
        "settings": cell.settings.line(),
    }
    doc = root / "docs" / "BENCHMARKS.md"
    text = render_benchmarks(
        [env], {env.env: [row]}, {env.env: Path("plots/p.png")}, project / "results", "t", root,
        base_doc=doc, store=store,
    )  # fmt: skip
    doc.write_text(text)
    check = check_links(doc)
    ours = [href for href in check.checked if href.endswith(folder)]
    assert ours == [os.path.relpath(store.folder_dir(folder).resolve(), doc.parent.resolve())]
    assert not [line for line in check.broken if folder in line]
