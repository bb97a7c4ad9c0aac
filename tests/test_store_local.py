"""The local store: a folder laid out like a dataset repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_helpers import make_run_folder, tree_bytes

from slm_bench.errors import BenchError
from slm_bench.stores import make_public_store, make_store, require_folders
from slm_bench.stores.local import LocalStore

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
    assert store.url(FOLDER) == stored.resolve().as_uri()


def test_missing_and_invalid_folders(store, tmp_path):
    with pytest.raises(BenchError, match="data/nope not found"):
        store.download("nope", tmp_path / "hf_data")
    assert not (tmp_path / "hf_data" / "data" / "nope").exists()
    with pytest.raises(BenchError, match="invalid data folder name"):
        store.exists(["../escape"])
    with pytest.raises(BenchError, match=r"1 linked data folder\(s\) not found: file://"):
        require_folders(store, ["nope"])
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
