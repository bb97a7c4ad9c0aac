"""The local store: a folder laid out like a dataset repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hf_helpers import make_run_folder, tree_bytes

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc
from slm_bench.stores import make_public_store, make_store, require_folders
from slm_bench.stores.local import LocalStore
from slm_bench.stores.publish import plan_publish, publish

FOLDER = "ppo_cartpole_arc_2026_02_11_144029"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    made = make_store("local", {"root": str(tmp_path / "store")})
    assert isinstance(made, LocalStore)
    return made


def test_upload_download_exists_url(store, tmp_path):
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.upload(run)
    stored = store.repo_dir / "data" / FOLDER
    expected = {k: v for k, v in tree_bytes(run).items() if not k.endswith("_optim.pt")}
    assert tree_bytes(stored) == expected
    assert store.exists([FOLDER, "other_2026"]) == {FOLDER: True, "other_2026": False}
    dest = store.download(FOLDER, tmp_path / "hf_data")
    assert dest == tmp_path / "hf_data" / "data" / FOLDER
    assert tree_bytes(dest) == expected
    assert store.url(FOLDER) == stored.as_posix()


def test_missing_and_invalid_folders(store, tmp_path):
    with pytest.raises(BenchError, match="data/nope not found"):
        store.download("nope", tmp_path / "hf_data")
    assert not (tmp_path / "hf_data" / "data" / "nope").exists()
    with pytest.raises(BenchError, match="invalid data folder name"):
        store.exists(["../escape"])
    with pytest.raises(BenchError) as raised:
        require_folders(store, ["nope"])
    assert str(raised.value) == (
        "store SLM-Lab/benchmark-dev: 1 linked data folder(s) not found: "
        f"{store.repo_dir}/data/nope"
    )
    with pytest.raises(BenchError, match="run folder to upload does not exist"):
        store.upload(tmp_path / "absent")


def test_upload_helpers_skip_identical_files(store, tmp_path):
    docs = tmp_path / "docs"
    (docs / "plots").mkdir(parents=True)
    (docs / "BENCHMARKS.md").write_text("# table\n")
    (docs / "plots" / "a.png").write_bytes(b"\x89PNG")
    assert store.upload_tree(docs, "docs") == 2
    assert store.upload_tree(docs, "docs/") == 0
    (docs / "BENCHMARKS.md").write_text("# table v2\n")
    assert store.upload_tree(docs, "docs") == 1
    assert (store.repo_dir / "docs" / "BENCHMARKS.md").read_text() == "# table v2\n"

    readme = tmp_path / "README.md"
    readme.write_text("# readme\n")
    assert store.upload_file(readme, "README.md") == 1
    assert store.upload_file(readme, "README.md") == 0
    with pytest.raises(BenchError, match="invalid path in repo"):
        store.upload_file(readme, "../outside.md")


def test_public_store_uses_the_public_repo(tmp_path):
    public = make_public_store("local", {"root": str(tmp_path)})
    assert public.repo == "SLM-Lab/benchmark"
    custom = make_public_store("local", {"root": str(tmp_path), "public_repo": "me/pub"})
    assert custom.repo == "me/pub"
    with pytest.raises(BenchError, match="unknown store 'ftp'"):
        make_store("ftp", {})


def _table(links: dict[str, str]) -> str:
    rows = "".join(
        f"| {algo} | ✅ | 400.00 | specs/x.yaml | {name} | [{folder}]({url}) |\n"
        for (algo, name), (folder, url) in zip(
            [("DQN", "dqn_cartpole"), ("PPO", "ppo_cartpole")], links.items(), strict=True
        )
    )
    return (
        "# Benchmarks\n\n## Results\n\n### Phase 1: Classic Control\n\n#### 1.1 CartPole-v1\n\n"
        "**Docs**: [CartPole](https://gymnasium.farama.org/) | Target reward MA > 400\n\n"
        "**Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500\n\n"
        "| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |\n"
        "|-----------|--------|-----|-----------|-----------|---------|\n"
        f"{rows}"
    )


def test_links_survive_moving_the_project(tmp_path, monkeypatch):
    """Rows written in one place still publish after the project folder is moved."""
    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    monkeypatch.chdir(project)
    options = {"root": "results/store"}  # the default: relative to the project
    dev = make_store("local", options)
    folders = ["dqn_cartpole_2026_02_11_135648", FOLDER]
    for seed, folder in enumerate(folders):
        dev.upload(make_run_folder(tmp_path / "runs", folder, seed=seed))
    links = {folder: dev.url(folder) for folder in folders}
    assert all(not Path(url).is_absolute() and Path(url).is_dir() for url in links.values())
    (project / "docs" / "BENCHMARKS.md").write_text(_table(links))
    (project / "README.md").write_text("# results\n")

    moved = Path(shutil.move(project, tmp_path / "elsewhere" / "moved"))
    monkeypatch.chdir(moved)
    dev, public = make_store("local", options), make_public_store("local", options)
    assert {f: dev.url(f) for f in folders} == links  # the same links after the move
    assert all(Path(url).is_dir() for url in links.values())  # and they resolve there
    plan = plan_publish(
        Path("docs/BENCHMARKS.md"), Path("README.md"), Path("docs"), dev, public, Path("hf_data")
    )
    assert plan.folders == tuple(folders)  # nothing silently skipped
    report = publish(plan)
    assert report.uploaded["data"] > 0 and report.links_rewritten == 2
    for folder in folders:
        assert (moved / public.url(folder)).is_dir()
    # The published table links the public repo's data/ from its docs/: ../data/FOLDER.
    published = public.repo_dir / "docs" / "BENCHMARKS.md"
    rows = BenchmarksDoc.read(published).result_rows()
    assert {row.hf_url for row in rows} == {f"../data/{folder}" for folder in folders}
    assert all((published.parent / row.hf_url).is_dir() for row in rows)


def test_an_unwritable_store_is_one_line_naming_the_real_path(store, tmp_path):
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.repo_dir.mkdir(parents=True)
    (store.repo_dir / "data").write_text("not a folder")  # no folder can be made under it
    with pytest.raises(BenchError) as raised:
        store.upload(run)
    message = str(raised.value)
    assert message.startswith(f"{store.repo_dir}/data/{FOLDER}: cannot upload {run} there: ")
    assert ".partial" not in message and "\n" not in message
    with pytest.raises(BenchError, match=rf"^{store.repo_dir}/data/a\.md: cannot upload"):
        store.upload_file(run / "log" / f"{FOLDER}_t0_s0.log", "data/a.md")
    (store.repo_dir / "data").unlink()
    store.upload_file(run / "log" / f"{FOLDER}_t0_s0.log", "docs/a.md")  # writable again


def test_a_broken_store_file_is_reported_at_its_real_place(store, tmp_path):
    store.upload(make_run_folder(tmp_path / "runs", FOLDER))
    broken = store.folder_dir(FOLDER) / "info" / "gone.json"
    broken.symlink_to(tmp_path / "absent.json")
    dest_root = tmp_path / "hf_data"
    with pytest.raises(BenchError) as raised:
        store.download(FOLDER, dest_root)
    message = str(raised.value)
    assert message.startswith(f"{dest_root}/data/{FOLDER}: cannot copy {store.folder_dir(FOLDER)}")
    assert ".partial" not in message.split(": cannot")[0]
    assert not (dest_root / "data" / FOLDER).exists()
