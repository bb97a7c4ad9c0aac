"""The HTML report: pages rendered from real results, built by `snakemake --report`, and checked
in a real headless Chromium (the table, a plot and the comparison are on screen)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import matplotlib.image
import pytest
from browser import INSTALL_HINT, browser
from test_compare import configure, plant_reference
from tiny_results import copy_of, tiny_benchmark
from workflow_helpers import snakemake

from slm_bench.errors import BenchError
from slm_bench.steps.report import render_markdown, write_benchmarks_page

SLM_LAB_TABLE = Path(__file__).parent / "fixtures/slm-lab/BENCHMARKS.md"
# Set to a path (e.g. docs/report.png) to keep the screenshot the browser test takes.
SCREENSHOT_ENV = "SLM_BENCH_REPORT_SCREENSHOT"


def test_markdown_tables_render_and_local_images_are_inlined(tmp_path):
    (tmp_path / "plots").mkdir()
    image = tmp_path / "plots" / "CartPole-v1.png"
    matplotlib.image.imsave(image, [[0.0, 1.0], [1.0, 0.0]])  # a real 2x2 PNG
    html = render_markdown(
        "| Algorithm | MA |\n|---|---|\n| PPO | 498.94 |\n\n![CartPole-v1](plots/CartPole-v1.png)"
        "\n![missing](plots/none.png)\n",
        tmp_path,
    )
    assert "<th>Algorithm</th>" in html and "<td>498.94</td>" in html
    assert 'src="data:image/png;base64,iVBORw0KGgo' in html
    assert 'src="plots/none.png"' in html  # a missing image stays a link, nothing fails
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)  # a PNG's signature, then garbage
    with pytest.raises(BenchError, match=r"plots/CartPole-v1.png: not a readable image"):
        render_markdown("![CartPole-v1](plots/CartPole-v1.png)\n", tmp_path)


def test_slm_labs_whole_table_renders(tmp_path):
    out = tmp_path / "BENCHMARKS.html"
    write_benchmarks_page(SLM_LAB_TABLE, out)
    html = out.read_text()
    assert html.count("<table>") >= 20
    assert "<td>PPO</td>" in html and "<td>498.94</td>" in html
    assert "<script" not in html


# -- the real report --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`snakemake --report` over the tiny benchmark, compared with a planted reference."""
    built = tiny_benchmark(tmp_path_factory)
    workdir = copy_of(built, tmp_path_factory.mktemp("report") / "work")
    shift = {
        ("CartPole-v1", "PPO"): 300.0,
        ("CartPole-v1", "DQN"): 0.3,
        ("Acrobot-v1", "PPO"): -150.0,
    }
    plant_reference(workdir, workdir / "reference.md", shift)
    configure(workdir, compare_reference="reference.md")  # relative to the working directory
    result = snakemake(
        workdir, "--report", "results/report.html", "--report-after-run", "report_pages"
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return workdir


def _report_data(report_html: str, name: str) -> dict:
    """A data block of Snakemake's report (``<script id="categories">var categories = {...};``)."""
    match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', report_html, re.S)
    return json.loads(match.group(1))


@pytest.mark.slow
def test_report_is_organised_by_phase_and_env(report):
    html = (report / "results/report.html").read_text()
    categories = {
        (category, subcategory)
        for category, subcategories in _report_data(html, "categories").items()
        for subcategory in subcategories
    }
    assert {
        ("Benchmarks", "Overview"),
        ("Benchmarks", "BENCHMARKS.md"),
        ("Benchmarks", "Comparison"),
        ("Statistics", "Other"),
        ("Phase 1: Classic Control", "CartPole-v1"),
        ("Phase 1: Classic Control", "Acrobot-v1"),
    } <= categories
    overview = (report / "results/report/overview.html").read_text()
    for cell in ("CartPole-v1/ppo", "CartPole-v1/dqn", "Acrobot-v1/ppo"):
        stats = json.loads((report / f"results/{cell}/stats.json").read_text())
        assert f"{stats['iqm']:.2f}" in overview
    env_page = (report / "results/report/envs/CartPole-v1.html").read_text()
    metrics = json.loads((report / "results/CartPole-v1/ppo/metrics.json").read_text())
    assert metrics["data_folder"] in env_page and "embedded" in env_page


def _open_result(chrome, url: str, category: str, subcategory: str, label: str) -> None:
    """Open a result the way a reader does: its category, subcategory, then its eye button."""
    chrome.get(url)
    chrome.click(chrome.wait_for(f'//nav//a[normalize-space()="{category}"]'))
    chrome.click(chrome.wait_for(f'//nav//a[normalize-space()="{subcategory}"]'))
    chrome.click(chrome.wait_for(f'//nav//tr[td[normalize-space()="{label}"]]//a[@iconname="eye"]'))
    chrome.frame(chrome.wait_for("//iframe"))


@pytest.mark.slow
def test_report_in_a_real_headless_browser(report, tmp_path):
    chrome = browser(width=1600, height=1100)
    if chrome is None:
        pytest.skip(INSTALL_HINT)
    url = (report / "results/report.html").resolve().as_uri()
    with chrome:
        # the overview: the table with statistics and verdicts, and the learning curves
        _open_result(chrome, url, "Benchmarks", "Overview", "overview")
        chrome.wait_for("//table//td[normalize-space()='regressed']")
        text = chrome.run("return document.body.innerText")
        assert re.search(r"CartPole-v1.*Verdict", text, re.S)
        assert re.search(r"PPO\t\t[-0-9.]+\t.*\tregressed", text), text[:2000]
        assert "1 regressed, 1 improved, 1 within noise" in text
        images = chrome.run(
            "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth])"
        )
        assert ["CartPole-v1 learning curves", 1000] in images, images
        assert all(width > 0 for _, width in images)
        chrome.frame(None)
        shot = tmp_path / "report.png"
        chrome.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copy(shot, os.environ[SCREENSHOT_ENV])
        # BENCHMARKS.md rendered, with its plot
        _open_result(chrome, url, "Benchmarks", "BENCHMARKS.md", "BENCHMARKS.md")
        chrome.wait_for("//table//th[normalize-space()='SPEC_NAME']")
        assert chrome.run("return document.images[0].naturalWidth") > 0
        # the comparison
        _open_result(chrome, url, "Benchmarks", "Comparison", "comparison")
        chrome.wait_for("//td//span[@class='regressed']")
        # an env's runs: sessions, seeds, runner
        _open_result(chrome, url, "Phase 1: Classic Control", "CartPole-v1", "runs and statistics")
        text = chrome.run("return document.body.innerText")
        assert "Final MA" in text and "Runner\tembedded" in text


@pytest.mark.slow
def test_env_page_shows_each_runs_provenance(tmp_path_factory, tmp_path):
    """Once run.json carries provenance (run_cell collects it), the env page shows it all."""
    from importlib import metadata

    from slm_bench.steps import pulled_folder
    from slm_bench.steps.report import write_env_page
    from slm_bench.trust.provenance import collect_provenance

    workdir = copy_of(tiny_benchmark(tmp_path_factory), tmp_path / "work")
    cell_dirs = [workdir / "results/CartPole-v1/ppo", workdir / "results/CartPole-v1/dqn"]
    for cell_dir in cell_dirs:
        marker = json.loads((cell_dir / "run.json").read_text())
        folder = pulled_folder(cell_dir / "hf_data")
        marker["provenance"] = collect_provenance("embedded", run_folder=folder)
        (cell_dir / "run.json").write_text(json.dumps(marker))
    env = {"env": "CartPole-v1", "env_id": "CartPole-v1", "phase": "Phase 1", "target": "> 400"}
    out = tmp_path / "CartPole-v1.html"
    write_env_page(env, cell_dirs, None, out)
    html = out.read_text()
    provenance = json.loads((cell_dirs[0] / "run.json").read_text())["provenance"]
    assert f"stable-baselines3 {metadata.version('stable-baselines3')}" in html
    assert f"torch {metadata.version('torch')}" in html
    assert provenance["machine"]["cpu_model"] in html
    for seed in provenance["seeds"]:
        assert f'<td class="num">{seed}</td>' in html or f"<td>{seed}</td>" in html
    assert "not recorded for this run" not in html
