"""Stores: where run folders live between "run" and "table".

A store mirrors a dataset repo laid out as ``data/FOLDER/...``. The pipeline uploads a finished
run folder, pulls exactly that folder back into an ``hf_data`` tree, and verifies each table
link before writing a row. Publishing copies the table's folders, README.md and docs/ from the
dev repo to the public one through the same interface.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol

from slm_bench.config_model import BenchConfig, StoreKind, plain
from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.errors import BenchError

OPTIMIZER_GLOB = "*_optim.pt"  # SLM-Lab deletes optimizer files before upload
DEFAULT_DEV_REPO = "SLM-Lab/benchmark-dev"
DEFAULT_PUBLIC_REPO = "SLM-Lab/benchmark"


class Store(Protocol):
    name: str
    repo: str

    def upload(self, folder_path: Path) -> None:
        """Put ``folder_path`` at ``data/<folder_path.name>`` (optimizer files left out)."""

    def download(self, folder: str, dest_root: Path) -> Path:
        """Pull only ``data/<folder>`` into ``dest_root/data/<folder>`` atomically; return it."""

    def exists(self, folders: list[str]) -> dict[str, bool]:
        """Whether each ``data/<folder>`` exists, in one batched call."""

    def url(self, folder: str) -> str:
        """Where ``folder`` is (a Hub URL, or the local store's path from the project): the
        identity rows and upload markers record."""

    def link(self, folder: str, doc_dir: Path) -> str:
        """The link to ``folder`` from a document in ``doc_dir`` (a Hub URL, or a path
        relative to ``doc_dir``)."""

    def repo_link(self, folder: str, path_in_repo: str) -> str:
        """The link to ``folder`` from the file ``path_in_repo`` of this same repo."""

    def upload_file(self, local: Path, path_in_repo: str) -> int:
        """Put one file at ``path_in_repo``; returns 1 if it was sent, 0 if already there."""

    def upload_tree(self, local_dir: Path, path_in_repo: str) -> int:
        """Put ``local_dir``'s files under ``path_in_repo``; returns how many were sent.

        Files whose content the repo already has are skipped, so a repeat sends nothing.
        """


def make_store(
    kind: StoreKind | str,
    options: Mapping | None = None,
    repo: str | None = None,
    source: ConfigSource = DEFAULT_SOURCE,
) -> Store:
    """Build the store of ``kind`` from its ``options`` (``repo`` overrides the dev repo): the one
    place a store is chosen. ``source`` names the config in error lines."""
    try:
        kind = StoreKind(kind)
    except ValueError:
        raise BenchError(
            f"{source.where('store')}: unknown store '{kind}' (expected local or hf)"
        ) from None
    options = dict(options or {})
    if kind is StoreKind.LOCAL:
        from slm_bench.stores.local import LocalStore

        return LocalStore.from_options(options, repo=repo)
    from slm_bench.stores.hf import HfStore

    return HfStore.from_options(options, repo=repo, source=source)


def store_from_config(config: BenchConfig) -> Store:
    """The store the config names, with its options."""
    return make_store(config.store, plain(config.store_options), source=config.source)


def public_store_from_config(config: BenchConfig) -> Store:
    """The config's store for its public repo (where ``publish`` promotes results)."""
    return make_public_store(config.store, plain(config.store_options), config.source)


def make_public_store(
    kind: StoreKind | str, options: Mapping | None = None, source: ConfigSource = DEFAULT_SOURCE
) -> Store:
    """The store for the public repo (option ``public_repo``, default ``SLM-Lab/benchmark``)."""
    options = dict(options or {})
    repo = options.get("public_repo", DEFAULT_PUBLIC_REPO)
    return make_store(kind, options, repo=repo, source=source)


def check_folder_name(repo: str, folder: str) -> str:
    """``folder`` if it is a plain run folder name (one path segment, not hidden)."""
    if not folder or "/" in folder or "\\" in folder or folder.startswith("."):
        raise BenchError(f"store {repo}: invalid data folder name {folder!r}")
    return folder


def check_path_in_repo(repo: str, path_in_repo: str) -> str:
    """``path_in_repo`` normalised; it must stay inside the repo."""
    path = PurePosixPath(path_in_repo.strip("/"))
    if not str(path) or str(path) == "." or ".." in path.parts or path_in_repo.startswith("/"):
        raise BenchError(f"store {repo}: invalid path in repo {path_in_repo!r}")
    return str(path)


def local_files(local_dir: Path, ignore: Iterable[str] = ()) -> dict[str, Path]:
    """Files under ``local_dir`` by relative posix path, skipping names matching ``ignore``."""
    patterns = tuple(ignore)
    return {
        path.relative_to(local_dir).as_posix(): path
        for path in sorted(Path(local_dir).rglob("*"))
        if path.is_file() and not any(fnmatch.fnmatch(path.name, p) for p in patterns)
    }


def require_folders(store: Store, folders: list[str]) -> None:
    """Raise one BenchError naming every folder the store does not have (one batched check)."""
    missing = [folder for folder, found in store.exists(folders).items() if not found]
    if missing:
        links = ", ".join(store.url(folder) for folder in missing)
        raise BenchError(
            f"store {store.repo}: {len(missing)} linked data folder(s) not found: {links}"
        )
