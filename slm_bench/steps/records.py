"""The pipeline's own JSON records (run.json, upload.json, metrics.json, row.json, best.json):
reading them strictly, and the finite scores they hold."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import load_json


def redo(path: str | Path) -> str:
    """How to recover one of the pipeline's own files: its rule writes it again."""
    return f"redo it with snakemake --forcerun {path}"


def read_record(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """One of the pipeline's JSON records (run.json, upload.json, metrics.json, row.json).

    A truncated or edited file fails with one line naming it and the field, and the command
    that writes it again.
    """
    try:
        data = load_json(path)
    except BenchError as error:
        raise BenchError(f"{error}; {redo(path)}") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a JSON object, got {type(data).__name__}; {redo(path)}")
    missing = [key for key in required if key not in data]
    if missing:
        raise BenchError(
            f"{path}: missing field {missing[0]!r} (expected {', '.join(required)}); {redo(path)}"
        )
    return data


def finite_score(value: Any, source: str, field: str, record: bool = False) -> float:
    """``value`` as a finite float: an inf or NaN score never reaches a row. ``record``: the
    source is one of the pipeline's records, and the error says how to write it again."""
    hint = f"; {redo(source)}" if record else ""
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise BenchError(f"{source}: {field} {value!r}: expected a number{hint}") from None
    if not math.isfinite(score):
        raise BenchError(f"{source}: {field} {value!r}: expected a finite number{hint}")
    return score


def same_score(a: float, b: float) -> bool:
    """Equal as the table shows them (the log prints %.2f); NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return f"{a:.2f}" == f"{b:.2f}"
