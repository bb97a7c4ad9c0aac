"""The local store: a folder that mirrors a dataset repo, ``<root>/<repo>/data/FOLDER``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from slm_bench.atomic import staged_dir
from slm_bench.errors import BenchError
from slm_bench.stores import OPTIMIZER_GLOB

DEFAULT_ROOT = "results/store"
DEFAULT_REPO = "SLM-Lab/benchmark-dev"


@dataclass
class LocalStore:
    root: Path
    repo: str = DEFAULT_REPO
    name: str = "local"

    @classmethod
    def from_options(cls, options: dict, repo: str | None = None) -> LocalStore:
        return cls(
            root=Path(options.get("root", DEFAULT_ROOT)),
            repo=repo or options.get("dev_repo", DEFAULT_REPO),
        )

    @property
    def repo_dir(self) -> Path:
        return self.root / self.repo

    def folder_dir(self, folder: str) -> Path:
        if not folder or "/" in folder or folder.startswith("."):
            raise BenchError(f"store {self.repo}: invalid data folder name {folder!r}")
        return self.repo_dir / "data" / folder

    def upload(self, folder_path: Path) -> None:
        folder_path = Path(folder_path)
        if not folder_path.is_dir():
            raise BenchError(f"{folder_path}: run folder to upload does not exist")
        with staged_dir(self.folder_dir(folder_path.name)) as tmp:
            shutil.copytree(
                folder_path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(OPTIMIZER_GLOB)
            )

    def download(self, folder: str, dest_root: Path) -> Path:
        source = self.folder_dir(folder)
        if not source.is_dir():
            raise BenchError(f"store {self.repo}: data/{folder} not found under {self.repo_dir}")
        dest = Path(dest_root) / "data" / folder
        with staged_dir(dest) as tmp:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        return dest

    def exists(self, folders: list[str]) -> dict[str, bool]:
        return {folder: self.folder_dir(folder).is_dir() for folder in folders}

    def url(self, folder: str) -> str:
        return (self.repo_dir / "data" / folder).resolve().as_uri()
