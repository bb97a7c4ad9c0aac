"""Stores: where run folders live between "run" and "table".

A store mirrors a dataset repo laid out as ``data/FOLDER/...``. The pipeline uploads a finished
run folder, pulls exactly that folder back into an ``hf_data`` tree, and verifies each table
link before writing a row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

OPTIMIZER_GLOB = "*_optim.pt"  # SLM-Lab deletes optimizer files before upload


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
        """The link the table shows for ``folder``."""


def make_store(name: str, options: dict | None = None, repo: str | None = None) -> Store:
    """Build the store called ``name`` from its config ``options`` (``repo`` overrides the dev repo)."""
    options = options or {}
    if name == "local":
        from slm_bench.stores.local import LocalStore

        return LocalStore.from_options(options, repo=repo)
    if name == "hf":
        from slm_bench.stores.hf import HfStore

        return HfStore.from_options(options, repo=repo)
    from slm_bench.errors import BenchError

    raise BenchError(f"config.yaml: store: unknown store '{name}' (expected local or hf)")
