"""Fixed per-cell seeds: the config's ``seed`` and a cell's key give the cell its own seed.

Each cell gets a different seed (so cells do not share random streams), and the same seed on every
run of the same config, so the embedded runner repeats its numbers. The trial then seeds its
sessions ``cell_seed + 1000 * session`` as SLM-Lab does from its base.
"""

from __future__ import annotations

import hashlib

# Below 2**31 so that seed + 1000 * session stays a valid 32-bit seed for every session count
# SLM-Lab uses.
SEED_RANGE = 2**31


def cell_seed(base: int | None, cell_key: str) -> int | None:
    """The seed of cell ``env/algo`` under the config's ``seed`` (None: no fixed seed)."""
    if base is None:
        return None
    digest = hashlib.sha256(f"{int(base)}:{cell_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE
