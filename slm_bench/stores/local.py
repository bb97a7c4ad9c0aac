"""The local store: a folder that mirrors a dataset repo, ``<root>/<repo>/data/FOLDER``.

Its links are paths, never absolute URIs. A row records ``<root>/<repo>/data/FOLDER`` with
``root`` as the config gives it (``results/store`` by default, relative to the project); a
document links the folder relative to where the document is (``store/SLM-Lab/benchmark-dev/
data/FOLDER`` from ``results/BENCHMARKS.md``; ``../data/FOLDER`` from the repo's own
``docs/BENCHMARKS.md``), so every link resolves from the file that holds it and moving the
project keeps them valid.
"""

from __future__ import annotations

import filecmp
import os
import posixpath
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slm_bench.atomic import copy_file, staged_dir
from slm_bench.errors import BenchError
from slm_bench.stores import (
    DEFAULT_DEV_REPO,
    OPTIMIZER_GLOB,
    check_folder_name,
    check_path_in_repo,
    local_files,
)

DEFAULT_ROOT = "results/store"
DEFAULT_REPO = DEFAULT_DEV_REPO


@contextmanager
def _one_line(action: str, path: Path) -> Iterator[None]:
    """An OS error (unwritable store, full disk) as one line naming the real path, not the
    temporary copy the error happened in."""
    try:
        yield
    except shutil.Error as error:  # copytree gathers (source, destination, reason) triples
        reason = error.args[0][0][2] if error.args and error.args[0] else error
        raise BenchError(f"{path}: cannot {action}: {reason}") from None
    except OSError as error:
        raise BenchError(f"{path}: cannot {action}: {error.strerror or error}") from None


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
        return self.repo_dir / "data" / check_folder_name(self.repo, folder)

    def upload(self, folder_path: Path) -> None:
        folder_path = Path(folder_path)
        if not folder_path.is_dir():
            raise BenchError(f"{folder_path}: run folder to upload does not exist")
        target = self.folder_dir(folder_path.name)
        with _one_line(f"upload {folder_path} there", target), staged_dir(target) as tmp:
            shutil.copytree(
                folder_path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(OPTIMIZER_GLOB)
            )

    def download(self, folder: str, dest_root: Path) -> Path:
        source = self.folder_dir(folder)
        if not source.is_dir():
            raise BenchError(f"store {self.repo}: data/{folder} not found under {self.repo_dir}")
        dest = Path(dest_root) / "data" / folder
        with _one_line(f"copy {source} there", dest), staged_dir(dest) as tmp:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        return dest

    def exists(self, folders: list[str]) -> dict[str, bool]:
        return {folder: self.folder_dir(folder).is_dir() for folder in folders}

    def url(self, folder: str) -> str:
        """``<root>/<repo>/data/FOLDER`` as configured: portable when the root is relative."""
        return self.folder_dir(folder).as_posix()

    def link(self, folder: str, doc_dir: Path) -> str:
        """``folder`` relative to ``doc_dir`` (both taken from the working directory)."""
        target = self.folder_dir(folder).resolve()
        return Path(os.path.relpath(target, Path(doc_dir).resolve())).as_posix()

    def repo_link(self, folder: str, path_in_repo: str) -> str:
        """``data/FOLDER`` relative to the folder of ``path_in_repo`` (``../data/FOLDER`` from
        ``docs/BENCHMARKS.md``)."""
        doc_folder = posixpath.dirname(check_path_in_repo(self.repo, path_in_repo)) or "."
        return posixpath.relpath(f"data/{check_folder_name(self.repo, folder)}", doc_folder)

    def upload_file(self, local: Path, path_in_repo: str) -> int:
        local = Path(local)
        if not local.is_file():
            raise BenchError(f"{local}: file to upload does not exist")
        return int(self._put(local, self.repo_dir / check_path_in_repo(self.repo, path_in_repo)))

    def upload_tree(self, local_dir: Path, path_in_repo: str) -> int:
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise BenchError(f"{local_dir}: folder to upload does not exist")
        target = self.repo_dir / check_path_in_repo(self.repo, path_in_repo)
        return sum(self._put(path, target / rel) for rel, path in local_files(local_dir).items())

    @staticmethod
    def _put(source: Path, dest: Path) -> bool:
        """Copy ``source`` to ``dest`` atomically unless ``dest`` already has the same bytes."""
        if dest.is_file() and filecmp.cmp(source, dest, shallow=False):
            return False
        with _one_line(f"upload {source} there", dest):
            copy_file(source, dest)
        return True
