"""The arguments naming the real SLM-Lab that the benches comparing against it share."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_slm_lab_arguments(parser: argparse.ArgumentParser, repo: Path) -> None:
    """``--slm-lab-src`` (its source tree) and ``--slm-lab-venv`` (the venv it is installed in);
    defaults from SLM_BENCH_SLM_LAB_SRC/_VENV, else the layout beside ``repo``."""
    parser.add_argument(
        "--slm-lab-src",
        type=Path,
        default=Path(os.environ.get("SLM_BENCH_SLM_LAB_SRC") or repo.parent / "shared/slm-lab"),
    )
    parser.add_argument(
        "--slm-lab-venv",
        type=Path,
        default=Path(os.environ.get("SLM_BENCH_SLM_LAB_VENV") or repo / ".venv-slm-lab"),
    )
