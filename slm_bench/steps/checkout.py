"""The checkout stages (opt-in): the table and plots written back into a SLM-Lab checkout's docs,
then committed there (never pushed)."""

from __future__ import annotations

from pathlib import Path

from slm_bench.atomic import write_json
from slm_bench.config_model import BenchConfig
from slm_bench.steps.records import read_record


def update_checkout_docs(
    config: BenchConfig, table: Path, plots: list[Path], out_json: Path
) -> None:
    from slm_bench.matrix.checkout import update_docs

    write_json(out_json, update_docs(config, table, plots))


def commit_checkout(
    config: BenchConfig, updated_json: Path, row_paths: list[Path], out_json: Path
) -> None:
    from slm_bench.matrix.checkout import commit_docs

    rows = [read_record(path) for path in row_paths]
    write_json(out_json, commit_docs(config, read_record(updated_json), rows))
