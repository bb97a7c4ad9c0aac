"""Short runs of the real SLM-Lab on a working copy of its checkout (tests and benchmarks).

SLM-Lab reads SPEC_FILE under ``slm_lab/spec/`` of the current directory and writes ``data/``
next to the ``slm_lab`` package it imports, so a run happens in a checkout. ``working_copy``
copies a checkout's package to a scratch folder and writes an ``slm-lab`` command there that
runs an installed SLM-Lab on that copy (PYTHONPATH puts the copy first). ``budget_variant``
writes a variant of one of its specs whose ``max_frame`` comes from ``${max_frame}``: SLM-Lab's
``-s max_frame=N`` fills only that placeholder, and its benchmark specs hard-code the budget.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from slm_bench.atomic import write_text
from slm_bench.errors import BenchError


def working_copy(checkout: Path, slm_lab: Path, dest: Path) -> Path:
    """Copy ``checkout``'s ``slm_lab`` package to ``dest`` (writable, no caches) and write
    ``dest/../slm-lab``, which runs the installed ``slm_lab`` command on the copy. Returns dest."""
    package = Path(checkout) / "slm_lab"
    if not package.is_dir():
        raise BenchError(f"{checkout}: no slm_lab/ package (expected an SLM-Lab checkout)")
    if not Path(slm_lab).exists():
        raise BenchError(f"{slm_lab}: no slm-lab command (run `make slm-lab-venv`)")
    dest = Path(dest)
    shutil.copytree(package, dest / "slm_lab", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [dest, *dest.rglob("*")]:  # a shared checkout may be read-only
        path.chmod(path.stat().st_mode | 0o200)
    command = dest.parent / "slm-lab"
    write_text(command, f'#!/bin/sh\nPYTHONPATH="{dest}" exec "{Path(slm_lab)}" "$@"\n')
    command.chmod(0o755)
    return dest


def command_of(copy: Path) -> Path:
    """The ``slm-lab`` command ``working_copy`` wrote for ``copy``."""
    return Path(copy).parent / "slm-lab"


def budget_variant(
    checkout: Path,
    spec_file: str,
    spec_name: str,
    variant_file: str,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """Write ``variant_file`` (under ``checkout``) holding ``spec_name`` from ``spec_file`` with
    ``env.max_frame: ${max_frame}`` and ``meta`` updated; return ``variant_file``."""
    source = Path(checkout) / spec_file
    specs = yaml.safe_load(source.read_text())
    spec = specs.get(spec_name) if isinstance(specs, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("env"), dict):
        raise BenchError(f"{spec_file}: {spec_name}: no such spec with an env block")
    spec["env"]["max_frame"] = "${max_frame}"
    spec.setdefault("meta", {}).update(meta or {})
    text = yaml.safe_dump({spec_name: spec}, sort_keys=False)
    # a bare placeholder: SLM-Lab substitutes the text, and '1500' would stay a string
    write_text(Path(checkout) / variant_file, text.replace("'${max_frame}'", "${max_frame}"))
    return variant_file
