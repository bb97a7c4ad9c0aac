"""The audit stage: every row's spec against its Settings line, and hand-set vs computed Status."""

from __future__ import annotations

from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.config_model import BenchConfig


def write_audit(matrix, config: BenchConfig, out_md: Path) -> None:
    """Report every row whose spec disagrees with its Settings line; never fails on a row."""
    from slm_bench.formats.baseline import baseline_path
    from slm_bench.trust.audit import (
        audit_matrix,
        never_learned_rows,
        render_audit,
        status_differences,
    )

    differences = None
    if config.checkout is not None:
        from slm_bench.matrix.checkout import read_checkout_benchmarks

        doc = read_checkout_benchmarks(config.checkout, config.source)
        # The checkout's own random baseline and the configured status rule, as write_row uses.
        differences = status_differences(doc, baseline_path(config), config.status_rule)
    rows = audit_matrix(matrix, config.max_frame_policy)
    write_text(out_md, render_audit(rows, differences, never_learned_rows(matrix)))
