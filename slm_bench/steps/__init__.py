"""The pipeline's stages as plain functions; ``slm_bench.jobs`` maps each rule's job onto one.

``cell``: the per-cell chain (spec, run, upload, metrics, pulled folder, row) and the plot;
``tables``: BENCHMARKS.md, staged and cross-checked; ``audit``; ``checkout``: the write-back to
a checkout; ``publish``: publishing; ``cancel``: the remote work stopped; ``stats``: the
statistics files; ``records``: reading the pipeline's own records; ``search``: search a cell,
apply its best values, pick the cells to search (imported from there, since it needs Optuna).
The status table lives in ``slm_bench.monitor.status``.
"""

from slm_bench.runners import runner_options
from slm_bench.steps.audit import write_audit
from slm_bench.steps.cell import (
    extract_metrics,
    plot_env,
    pull_run_folder,
    pulled_folder,
    run_cell,
    upload_run,
    validate_spec,
    write_row,
)
from slm_bench.steps.checkout import commit_checkout, update_checkout_docs
from slm_bench.steps.publish import publish_results, write_publish_manifest
from slm_bench.steps.records import read_record
from slm_bench.steps.tables import (
    CellFiles,
    base_benchmarks,
    cell_files,
    docs_line,
    write_benchmarks,
)
from slm_bench.stores import store_from_config

__all__ = [
    "CellFiles",
    "base_benchmarks",
    "cell_files",
    "commit_checkout",
    "docs_line",
    "extract_metrics",
    "plot_env",
    "publish_results",
    "pull_run_folder",
    "pulled_folder",
    "read_record",
    "run_cell",
    "runner_options",
    "store_from_config",
    "update_checkout_docs",
    "upload_run",
    "validate_spec",
    "write_audit",
    "write_benchmarks",
    "write_publish_manifest",
    "write_row",
]
