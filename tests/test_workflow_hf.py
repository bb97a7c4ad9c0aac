"""The whole pipeline with ``store: hf`` against a Hub-compatible server on 127.0.0.1:
run -> upload to dev -> pull -> verify -> table with dev links -> publish -> public links."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import pytest
from hf_helpers import CANARY_TOKEN, offline_hf_env
from hub_server import HubServer
from link_check import check_links
from workflow_helpers import make_workdir, snakemake, tiny_config

DEV, PUBLIC = "SLM-Lab/benchmark-dev", "SLM-Lab/benchmark"


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """A running test Hub and the environment the Snakemake subprocess inherits."""
    offline_hf_env(monkeypatch, tmp_path / "hf_home")
    with HubServer(tmp_path / "hub") as hub:
        yield hub


def hf_config(endpoint: str) -> dict:
    config = tiny_config(store="hf")
    algorithms = config["envs"]["CartPole-v1"]["algorithms"]
    config["envs"]["CartPole-v1"]["algorithms"] = {"ppo": algorithms["ppo"]}
    config["hf"] = {"endpoint": endpoint, "max_retries": 2, "backoff_s": 0.05, "max_wait_s": 1}
    return config


def everything_written(workdir: Path) -> str:
    """All text the pipeline left behind: results, Snakemake's own logs and metadata."""
    chunks = []
    for root in (workdir / "results", workdir / ".snakemake"):
        for path in root.rglob("*"):
            if path.is_file():
                chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def test_pipeline_uploads_verifies_links_and_publishes(hub_env, tmp_path):
    hub = hub_env
    workdir = make_workdir(tmp_path / "work", hf_config(hub.url))
    outputs = []

    built = snakemake(workdir)
    outputs.append(built.stdout)
    assert built.returncode == 0, built.stdout[-4000:]
    metrics = json.loads((workdir / "results/CartPole-v1/ppo/metrics.json").read_text())
    folder = metrics["data_folder"]
    dev_link = f"[{folder}]({hub.url}/datasets/{DEV}/tree/main/data/{folder})"
    table = (workdir / "results/BENCHMARKS.md").read_text()
    assert dev_link in table
    links = check_links(workdir / "results/BENCHMARKS.md", hub.url)
    assert dev_link.split("(")[1].rstrip(")") in links.checked and links.broken == []
    dev_files = hub.files(DEV)
    assert any(name.startswith(f"data/{folder}/info/") for name in dev_files)
    assert not [name for name in dev_files if name.endswith("_optim.pt")]
    # Only that folder was pulled, into the cell's hf_data tree laid out like the dataset.
    pulled = workdir / "results/CartPole-v1/ppo/hf_data/data"
    assert [p.name for p in pulled.iterdir()] == [folder]

    requests_before = hub.count()
    manifest = snakemake(workdir, "publish_manifest")
    outputs.append(manifest.stdout)
    assert manifest.returncode == 0, manifest.stdout[-4000:]
    text = (workdir / "results/publish/manifest.txt").read_text()
    assert f"pull     {DEV}/data/{folder}" in text
    assert f"-> {PUBLIC}/README.md" in text and f"-> {PUBLIC}/data" in text
    assert hub.count() == requests_before  # the dry run made no call at all

    published = snakemake(workdir, "publish")
    outputs.append(published.stdout)
    assert published.returncode == 0, published.stdout[-4000:]
    public_files = set(hub.files(PUBLIC))
    public_top = {
        name.split("/", 2)[1] if name.startswith("data/") else name for name in public_files
    }
    # The table's relative links work in the public repo: its plot and its spec file (not in a
    # pushed git repository here) are uploaded beside it, byte for byte.
    plot = "docs/plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    spec = "docs/sources/specs/ppo_classic.yaml"
    assert public_top - {".gitattributes"} == {
        "README.md",
        "docs/BENCHMARKS.md",
        plot,
        spec,
        folder,
    }
    public = hub.files(PUBLIC)
    assert public[plot] == (workdir / "results" / "plots" / Path(plot).name).read_bytes()
    assert public[spec] == (workdir / "specs" / "ppo_classic.yaml").read_bytes()
    assert {name for name in public_files if name.startswith("data/")} == {
        name for name in dev_files if name.startswith(f"data/{folder}/")
    }
    public_table = hub.files(PUBLIC)["docs/BENCHMARKS.md"].decode()
    assert f"[{folder}]({hub.url}/datasets/{PUBLIC}/tree/main/data/{folder})" in public_table
    assert DEV not in public_table
    assert f"](plots/{Path(plot).name})" in public_table
    assert "[specs/ppo_classic.yaml](sources/specs/ppo_classic.yaml)" in public_table
    assert (workdir / "results/hf_data/docs/BENCHMARKS.md").read_text() == public_table
    # Every link of the published table resolves: Hub links on the test Hub, relative links
    # among the public repo's files (from docs/); the copy in results/publish/ from there.
    links = check_links(Path("docs/BENCHMARKS.md"), hub.url, text=public_table)
    hub_broken = [line for line in links.broken if hub.url in line]  # relative: checked below
    assert hub_broken == [] and any(PUBLIC in href for href in links.checked)
    relative = [href for href in links.checked if "://" not in href]
    assert len(relative) >= 2
    for href in relative:
        target = posixpath.normpath(posixpath.join("docs", href.split("#")[0]))
        assert target in public_files or any(f.startswith(target + "/") for f in public_files)
    copy = check_links(workdir / "results/publish/BENCHMARKS.md", hub.url)
    assert copy.broken == [] and len(copy.checked) == len(links.checked)

    commits = hub.commit_count(PUBLIC)
    again = snakemake(workdir, "publish", "--forcerun", "publish")
    outputs.append(again.stdout)
    assert again.returncode == 0, again.stdout[-4000:]
    report = json.loads((workdir / "results/publish/report.json").read_text())
    assert report["uploaded"] == {"README.md": 0, "data": 0, "docs": 0}
    assert hub.commit_count(PUBLIC) == commits

    # The token reached the server, but no file, log or output of the pipeline.
    assert any(CANARY_TOKEN in (r.authorization or "") for r in hub.matching())
    assert CANARY_TOKEN not in everything_written(workdir)
    assert CANARY_TOKEN not in "\n".join(outputs)


def test_missing_link_target_keeps_the_row_out(hub_env, tmp_path):
    hub = hub_env
    workdir = make_workdir(tmp_path / "work", hf_config(hub.url))
    pulled = snakemake(workdir, "results/CartPole-v1/ppo/hf_data")
    assert pulled.returncode == 0, pulled.stdout[-4000:]
    folder = json.loads((workdir / "results/CartPole-v1/ppo/metrics.json").read_text())[
        "data_folder"
    ]
    hub.inject(r"paths-info", status=404, times=None, message="Entry not found")

    result = snakemake(workdir)

    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"data/{folder}" in errors[0] and DEV in errors[0], errors
    assert not (workdir / "results/CartPole-v1/ppo/row.json").exists()
    assert not (workdir / "results/BENCHMARKS.md").exists()
    assert CANARY_TOKEN not in result.stdout
