"""On-demand stages: the audit, the checkout write-back, publishing, status and cancel."""

from __future__ import annotations

from pathlib import Path

from slm_bench.atomic import write_json, write_text
from slm_bench.config import Cell
from slm_bench.steps.common import read_record, store_from_config

# -- audit ------------------------------------------------------------------------------------


def write_audit(matrix, config: dict, out_md: Path) -> None:
    """Report every row whose spec disagrees with its Settings line; never fails on a row."""
    from slm_bench.audit import audit_matrix, render_audit, status_differences

    differences = None
    if config.get("checkout"):
        from slm_bench.checkout import read_checkout_benchmarks

        doc = read_checkout_benchmarks(config["checkout"])
        differences = status_differences(doc, config.get("random_baseline"))
    rows = audit_matrix(matrix, config["max_frame_policy"])
    write_text(out_md, render_audit(rows, differences))


# -- the checkout (opt-in) --------------------------------------------------------------------


def update_checkout_docs(config: dict, table: Path, plots: list[Path], out_json: Path) -> None:
    from slm_bench.checkout import update_docs

    write_json(out_json, update_docs(config, table, plots))


def commit_checkout(
    config: dict, updated_json: Path, row_paths: list[Path], out_json: Path
) -> None:
    from slm_bench.checkout import commit_docs

    rows = [read_record(path) for path in row_paths]
    write_json(out_json, commit_docs(config, read_record(updated_json), rows))


# -- publish (opt-in, final) ------------------------------------------------------------------

DATASET_CARD = """---
pretty_name: {title}
---
# {title}

SLM-Lab benchmark runs, one folder per result under `data/`, as linked from
[docs/BENCHMARKS.md](docs/BENCHMARKS.md). Each folder is an SLM-Lab run folder: the resolved
spec, trial and session metrics, per-session CSVs and logs.
"""


def _publish_plan(config: dict, table: Path, hf_data: Path, card: Path):
    from slm_bench.publish import plan_publish
    from slm_bench.stores import make_public_store

    checkout = config.get("checkout")
    root = Path(checkout["root"]) if checkout else None
    readme = config["publish"]["readme"] or (root / "README.md" if root else None)
    if readme is None:
        write_text(card, DATASET_CARD.format(title=config["title"]))
        readme = card
    docs = config["publish"]["docs"] or (
        root / Path(checkout["benchmarks"]).parent if root else None
    )
    options = config["local_store"] if config["store"] == "local" else config["hf"]
    return plan_publish(
        table,
        readme,
        docs,
        store_from_config(config),
        make_public_store(config["store"], options),
        hf_data,
    )


def write_publish_manifest(
    config: dict, table: Path, hf_data: Path, out_manifest: Path, log
) -> None:
    """The dry run of publishing: what would be pulled and uploaded where (no network)."""
    from slm_bench.publish import format_manifest

    out_dir = Path(out_manifest).parent
    manifest = format_manifest(_publish_plan(config, table, Path(hf_data), out_dir / "README.md"))
    log(manifest)
    write_text(out_manifest, manifest + "\n")


def publish_results(
    config: dict, table: Path, hf_data: Path, out_report: Path, out_table: Path, log
) -> None:
    """Publish the table's runs from the dev repo to the public one (SLM-Lab's workflow)."""
    from slm_bench.publish import format_manifest, publish

    plan = _publish_plan(config, table, Path(hf_data), Path(out_report).parent / "README.md")
    log(format_manifest(plan))
    report = publish(plan)
    log(report.summary())
    write_text(out_table, Path(report.published_doc).read_text(encoding="utf-8"))
    write_json(
        out_report,
        {
            "public_repo": plan.public_store.repo,
            "folders": list(plan.folders),
            "pulled": report.pulled,
            "reused": report.reused,
            "removed": report.removed,
            "uploaded": report.uploaded,
            "links_rewritten": report.links_rewritten,
        },
    )


# -- status and cancel ------------------------------------------------------------------------

STAGE_LOGS = (
    "validate_spec",
    "run_cell",
    "upload_run",
    "extract_metrics",
    "pull_run_folder",
    "write_row",
)


def _logged_error(cell: Cell) -> str | None:
    """The one-line error a stage of the cell last logged, if its latest attempt failed."""
    for stage in reversed(STAGE_LOGS):
        log = Path("results/logs") / stage / cell.env / f"{cell.algo}.log"
        if log.is_file():
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if line.startswith("error: ")
            ]
            return f"{stage}: {errors[-1][len('error: ') :]}" if errors else None
    return None


def print_status(matrix, config: dict, out_table: Path, log) -> None:
    """One table for all cells: planned, submitted, running, done (score, status), failed."""
    from slm_bench.status import cell_status, live_statuses, render_status_table

    live = None
    if config["runner"] == "dstack":
        live = live_statuses(config["dstack"].get("dstack_bin", "dstack"))
    rows = []
    for cell in matrix.cells.values():
        cell_dir = Path("results") / cell.env / cell.algo
        row = cell_status(
            cell.key,
            cell_dir / "journal.json",
            cell_dir / "run.json",
            cell_dir / "metrics.json",
            live,
        )
        if row["state"] == "planned" and (error := _logged_error(cell)):
            row["state"], row["reason"] = "failed", error
        rows.append(row)
    table = render_status_table(rows)
    log(table)
    write_text(out_table, table + "\n")


def cancel_runs(matrix, log) -> None:
    """Stop every remote run the pipeline recorded in its journals."""
    from slm_bench.runners.dstack import cancel_recorded_runs

    journals = [Path("results") / env / algo / "journal.json" for env, algo in matrix.cells]
    stopped = cancel_recorded_runs([path for path in journals if path.is_file()])
    log(f"stopped {len(stopped)} run(s): {', '.join(stopped) or 'none'}")
