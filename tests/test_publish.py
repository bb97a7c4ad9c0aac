"""Publishing end to end: dev repo -> public repo, on the Hub-compatible server and locally."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_helpers import fast_options, make_run_folder, tree_bytes

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc
from slm_bench.stores import Store, make_public_store, make_store
from slm_bench.stores.publish import PublishReport, format_manifest, plan_publish, publish

pytest_plugins = ["conftest_hf"]

PPO = "ppo_cartpole_arc_2026_02_11_144029"
DQN = "dqn_cartpole_arc_2026_02_11_135648"
UNLINKED = "a2c_gae_cartpole_arc_2026_02_11_142531"


def benchmarks_md(links: dict[str, str]) -> str:
    """A BENCHMARKS.md with one CartPole table; ``links`` maps spec name -> HF Data cell."""
    rows = "".join(
        f"| {algo} | ✅ | 400.00 | [specs/{name}.yaml](../specs/{name}.yaml) | {name} | {cell} |\n"
        for (algo, name), cell in zip(
            [("DQN", "dqn_cartpole_arc"), ("PPO", "ppo_cartpole_arc"), ("SAC", "sac_cartpole")],
            links.values(),
            strict=False,
        )
    )
    return (
        "# Benchmarks\n\n## Results\n\n### Phase 1: Classic Control\n\n#### 1.1 CartPole-v1\n\n"
        "**Docs**: [CartPole](https://gymnasium.farama.org/) | State: Box(4) | Action: "
        "Discrete(2) | Target reward MA > 400\n\n"
        "**Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500\n\n"
        "| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |\n"
        "|-----------|--------|-----|-----------|-----------|---------|\n"
        f"{rows}\n"
        "![CartPole-v1](plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png)\n"
    )


def setup_project(tmp_path: Path, dev: Store, extra_row: str | None = None) -> dict[str, Path]:
    """Dev store with 3 run folders; a table linking 2 of them; README.md; docs/ with a plot."""
    runs = tmp_path / "runs"
    for seed, folder in enumerate((PPO, DQN, UNLINKED)):
        dev.upload(make_run_folder(runs, folder, seed=seed))
    links = {DQN: f"[{DQN}]({dev.url(DQN)})", PPO: f"[{PPO}]({dev.url(PPO)})"}
    if extra_row is not None:
        links["extra"] = extra_row
    docs = tmp_path / "docs"
    (docs / "plots").mkdir(parents=True)
    (docs / "BENCHMARKS.md").write_text(benchmarks_md(links))
    (docs / "plots" / "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    )
    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: mit\n---\n# SLM-Lab benchmark results\n")
    return {"doc": docs / "BENCHMARKS.md", "docs": docs, "readme": readme, "runs": runs}


def files_uploaded(report: PublishReport) -> int:
    """Files sent over every step (README.md, data, docs)."""
    return sum(report.uploaded.values())


def make_plan(paths: dict[str, Path], dev: Store, public: Store, tmp_path: Path):
    return plan_publish(
        paths["doc"], paths["readme"], paths["docs"], dev, public, tmp_path / "hf_data"
    )


def test_publish_on_the_hub_server_then_again_sends_nothing(hub, hf_env, tmp_path):
    options = fast_options(hub.url)
    dev, public = make_store("hf", options), make_public_store("hf", options)
    paths = setup_project(tmp_path, dev)
    (tmp_path / "hf_data" / "data" / "stale_run_2026").mkdir(parents=True)

    plan = make_plan(paths, dev, public, tmp_path)
    assert plan.folders == (DQN, PPO) and plan.stale == ("stale_run_2026",)
    manifest = format_manifest(plan)
    assert f"pull     SLM-Lab/benchmark-dev/data/{DQN}" in manifest
    assert "remove" in manifest and "SLM-Lab/benchmark/README.md" in manifest
    assert not hub.matching(r"SLM-Lab/benchmark/|SLM-Lab/benchmark\.git")  # planning is offline

    report = publish(plan)
    assert report.pulled == [DQN, PPO] and report.removed == ["stale_run_2026"]
    assert report.links_rewritten == 2

    files = hub.files(public.repo)
    published = {p.split("/")[1] for p in files if p.startswith("data/")}
    assert published == {DQN, PPO}  # exactly the linked folders, not UNLINKED
    assert {p.split("/")[0] for p in files} == {".gitattributes", "README.md", "data", "docs"}
    run = make_run_folder(tmp_path / "expected", PPO, seed=0)
    assert {
        p.removeprefix(f"data/{PPO}/"): c for p, c in files.items() if p.startswith(f"data/{PPO}/")
    } == {k: v for k, v in tree_bytes(run).items() if not k.endswith("_optim.pt")}
    assert files["README.md"] == paths["readme"].read_bytes()
    assert "docs/plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png" in files
    rows = BenchmarksDoc.parse(files["docs/BENCHMARKS.md"].decode()).result_rows()
    assert {row.hf_folder: row.hf_url for row in rows} == {
        DQN: public.url(DQN),
        PPO: public.url(PPO),
    }
    assert paths["doc"].read_text().count("benchmark-dev") == 2  # the source table is untouched

    commits = hub.commit_count(public.repo)
    hub.clear_log()
    again = publish(make_plan(paths, dev, public, tmp_path))
    assert files_uploaded(again) == 0 and again.pulled == [] and again.reused == [DQN, PPO]
    assert hub.commit_count(public.repo) == commits
    assert hub.count(r"/commit/|preupload|lfs|resolve") == 0
    assert hub.bytes_in() == sum(r.bytes_in for r in hub.matching("paths-info"))


def test_publish_with_the_local_store(tmp_path):
    options = {"root": str(tmp_path / "store")}
    dev, public = make_store("local", options), make_public_store("local", options)
    paths = setup_project(tmp_path, dev)
    report = publish(make_plan(paths, dev, public, tmp_path))
    public_dir = tmp_path / "store" / "SLM-Lab" / "benchmark"
    assert sorted(p.name for p in (public_dir / "data").iterdir()) == [DQN, PPO]
    assert (public_dir / "README.md").read_bytes() == paths["readme"].read_bytes()
    rows = BenchmarksDoc.read(public_dir / "docs" / "BENCHMARKS.md").result_rows()
    assert {row.hf_url for row in rows} == {f"../data/{DQN}", f"../data/{PPO}"}
    assert all((public_dir / "docs" / row.hf_url).is_dir() for row in rows)
    assert report.links_rewritten == 2 and files_uploaded(report) > 0
    assert files_uploaded(publish(make_plan(paths, dev, public, tmp_path))) == 0


def test_a_link_missing_from_the_dev_repo_stops_before_any_upload(hub, hf_env, tmp_path):
    options = fast_options(hub.url)
    dev, public = make_store("hf", options), make_public_store("hf", options)
    ghost = "sac_cartpole_2026_03_02_100434"
    paths = setup_project(tmp_path, dev, extra_row=f"[{ghost}]({dev.url(ghost)})")
    hub.clear_log()
    with pytest.raises(BenchError, match=rf"1 linked data folder\(s\) not found: .*/{ghost}"):
        publish(make_plan(paths, dev, public, tmp_path))
    assert hub.count(r"SLM-Lab/benchmark/|repos/create") == 0  # nothing went to the public repo


def test_a_dev_link_on_another_host_is_refused_at_planning(hub, hf_env, tmp_path):
    options = fast_options(hub.url)
    dev, public = make_store("hf", options), make_public_store("hf", options)
    stray = f"https://huggingface.co/datasets/SLM-Lab/benchmark-dev/tree/main/data/{UNLINKED}"
    paths = setup_project(tmp_path, dev, extra_row=f"[{UNLINKED}]({stray})")
    with pytest.raises(BenchError, match="check the store endpoint"):
        make_plan(paths, dev, public, tmp_path)


def test_rows_already_public_are_kept_and_checked(hub, hf_env, tmp_path):
    options = fast_options(hub.url)
    dev, public = make_store("hf", options), make_public_store("hf", options)
    paths = setup_project(tmp_path, dev)
    publish(make_plan(paths, dev, public, tmp_path))
    # The table now links to the public repo (as after committing the rewritten doc).
    paths["doc"].write_text(paths["doc"].read_text().replace("benchmark-dev", "benchmark"))
    plan = make_plan(paths, dev, public, tmp_path)
    assert plan.folders == () and plan.already_public == (DQN, PPO)
    assert files_uploaded(publish(plan)) == 0


def _git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_published_table_links_work_without_a_checkout(tmp_path, monkeypatch):
    """A table built in results/ links its plot and spec files relative to results/: in the
    public repo's docs/ they are uploaded beside it (a missing plot is dropped with a note),
    and a spec file of a pushed git repo links to that repository at the commit."""
    monkeypatch.chdir(tmp_path)
    options = {"root": str(tmp_path / "store")}
    dev, public = make_store("local", options), make_public_store("local", options)
    paths = setup_project(tmp_path, dev)
    results = tmp_path / "results"
    (results / "plots").mkdir(parents=True)
    plot = "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    (results / "plots" / plot).write_bytes(b"\x89PNG plot")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "dqn_cartpole_arc.yaml").write_text("dqn_cartpole_arc: {}\n")
    # PPO's spec lives in a git repo whose commit is on its remote (github).
    repo = tmp_path / "SLM-Lab"
    (repo / "slm_lab" / "spec").mkdir(parents=True)
    (repo / "slm_lab" / "spec" / "ppo_cartpole_arc.yaml").write_text("ppo_cartpole_arc: {}\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "specs")
    _git(repo, "remote", "add", "origin", "git@github.com:kengz/SLM-Lab.git")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")  # pushed
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    text = paths["doc"].read_text()
    text = text.replace(
        "../specs/ppo_cartpole_arc.yaml", "../SLM-Lab/slm_lab/spec/ppo_cartpole_arc.yaml"
    )
    text += "\n![Acrobot-v1](plots/Acrobot-v1_missing.png)\n"
    (results / "BENCHMARKS.md").write_text(text)

    plan = plan_publish(
        results / "BENCHMARKS.md", paths["readme"], None, dev, public, tmp_path / "hf_data"
    )
    manifest = format_manifest(plan)
    assert f"link     plots/{plot} -> docs/plots/{plot}" in manifest
    assert "drop     plot plots/Acrobot-v1_missing.png" in manifest
    report = publish(plan)

    docs = tmp_path / "store" / "SLM-Lab" / "benchmark" / "docs"
    published = (docs / "BENCHMARKS.md").read_text()
    assert f"![CartPole-v1](plots/{plot})" in published
    assert (docs / "plots" / plot).read_bytes() == b"\x89PNG plot"
    assert "[specs/dqn_cartpole_arc.yaml](sources/specs/dqn_cartpole_arc.yaml)" in published
    assert (docs / "sources" / "specs" / "dqn_cartpole_arc.yaml").is_file()
    url = f"https://github.com/kengz/SLM-Lab/blob/{commit}/slm_lab/spec/ppo_cartpole_arc.yaml"
    assert f"[specs/ppo_cartpole_arc.yaml]({url})" in published
    assert "*(plot not published: plots/Acrobot-v1_missing.png was not found)*" in published
    assert "Acrobot-v1_missing" not in "".join(p.name for p in docs.rglob("*"))
    assert len(report.links_fixed) == 4
    # Every relative link of the published table resolves inside the published docs/.
    from slm_bench.stores.publish_links import LINK_RE

    for match in LINK_RE.finditer(published):
        href = match["href"].split("#")[0]
        if "://" not in href and href and not href.startswith("/"):
            assert (docs / href).exists(), href  # a file, or a data folder (../data/FOLDER)
    again = plan_publish(
        results / "BENCHMARKS.md", paths["readme"], None, dev, public, tmp_path / "hf_data"
    )
    assert files_uploaded(publish(again)) == 0
