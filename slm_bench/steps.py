"""The pipeline's stages as plain functions; ``scripts/`` only maps Snakemake's I/O onto them.

Each stage reads its inputs, checks them, and writes its outputs atomically, so a failed or
killed job never leaves a half-written target behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from slm_bench.atomic import staged_dir, write_json, write_text
from slm_bench.baseline import random_return
from slm_bench.config import (
    TIME_LIMIT_SOURCE,
    Cell,
    EnvEntry,
    spec_root,
)
from slm_bench.durations import parse_duration
from slm_bench.errors import BenchError
from slm_bench.logs import read_score
from slm_bench.naming import plot_png_name
from slm_bench.run_folder import check_settings, read_run_folder, require_train, trial_score
from slm_bench.runners import RunRequest, make_runner
from slm_bench.settings import parse_target, status
from slm_bench.spec import audit_spec, max_frame_is_hardcoded, resolve_spec
from slm_bench.stores import Store, make_store
from slm_bench.validation import validate_against


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def store_from_config(config: dict, repo: str | None = None) -> Store:
    name = config["store"]
    options = config["local_store"] if name == "local" else config["hf"]
    return make_store(name, options, repo=repo)


# -- spec validated ---------------------------------------------------------------------------


def validate_spec(cell: Cell, policy: str, out_spec: Path, log) -> None:
    """Resolve the cell's spec as SLM-Lab would and audit it against the Settings line."""
    source = f"{cell.spec_file}: {cell.spec_name}"
    body = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
    hardcoded = max_frame_is_hardcoded(cell.spec_path, cell.spec_name, cell.sets)
    warnings = audit_spec(body, cell.settings, hardcoded, policy=policy, source=source)
    for warning in warnings:
        log(f"warning: {warning}")
    write_json(
        out_spec,
        {
            "spec_file": cell.spec_file,
            "spec_name": cell.spec_name,
            "sets": cell.sets,
            "settings": cell.settings.line(),
            "warnings": warnings,
            "spec": body,
        },
    )


# -- run marker + log -------------------------------------------------------------------------


def runner_options(config: dict, threads: int) -> dict:
    name = config["runner"]
    if name == "embedded":
        return {"workers": threads}
    if name == "slm-lab":
        return {**config["slm_lab"], "checkout": str(spec_root(config)), "store": config["store"]}
    options = dict(config["dstack"])
    options.setdefault("store", {"name": config["store"], **config["hf"]})
    return options


def run_cell(cell: Cell, config: dict, out_marker: Path, out_log: Path, threads: int) -> None:
    """Run the cell with the configured runner, upload its folder, then write log and marker.

    The log streams to a ``.partial`` file and the marker is written last, so Snakemake never
    sees a complete-looking output from a run that did not finish.
    """
    cell_dir = Path(out_marker).parent
    workdir = cell_dir / "work"
    if (
        config["runner"] != "dstack"
    ):  # a local rerun starts clean; remote state lives in the journal
        shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    partial_log = Path(f"{out_log}.partial")
    spec_file = str(cell.spec_path.resolve()) if config["runner"] == "embedded" else cell.spec_file
    request = RunRequest(
        spec_file=spec_file,
        spec_name=cell.spec_name,
        sets=cell.sets,
        workdir=workdir,
        log_path=partial_log,
        journal_path=cell_dir / "journal.json",
        time_limit_s=parse_duration(config["time_limit"], TIME_LIMIT_SOURCE),
        threads=threads,
        cell=cell.key,
        fingerprint=hashlib.sha256((cell_dir / "spec.json").read_bytes()).hexdigest()[:16],
    )
    started = _now()
    result = make_runner(config["runner"], runner_options(config, threads)).run(request)
    store = store_from_config(config)
    if result.folder_path is not None and not result.extra.get("uploaded"):
        store.upload(result.folder_path)
    os.replace(partial_log, out_log)
    write_json(
        out_marker,
        {
            "cell": cell.key,
            "runner": result.runner,
            "run_name": result.run_name,
            "data_folder": result.data_folder,
            "store": store.name,
            "repo": store.repo,
            "started_at": started,
            "ended_at": _now(),
            "extra": result.extra,
        },
    )


# -- metrics.json -----------------------------------------------------------------------------


def extract_metrics(cell: Cell, log_path: Path, marker_path: Path, out_metrics: Path) -> None:
    """The score from the log's ``trial_metrics:`` line, checked against the run marker."""
    run_log = read_score(log_path)
    marker = _read_json(marker_path)
    if run_log.data_folder != marker["data_folder"]:
        raise BenchError(
            f"{log_path}: data folder {run_log.data_folder} differs from the run marker's "
            f"{marker['data_folder']}"
        )
    scalar = run_log.trial_metrics
    started = datetime.fromisoformat(marker["started_at"])
    ended = datetime.fromisoformat(marker["ended_at"])
    metrics = {
        "cell": cell.key,
        "env_id": cell.env_id,
        "algorithm": cell.label,
        "spec_file": cell.spec_file,
        "spec_name": cell.spec_name,
        "data_folder": run_log.data_folder,
        "run_name": marker["run_name"],
        "runner": marker["runner"],
        "total_reward_ma": scalar["total_reward_ma"],
        "frame": scalar.get("frame"),
        "scalar": scalar,
        "run": {
            "started_at": marker["started_at"],
            "ended_at": marker["ended_at"],
            "wall_time_s": (ended - started).total_seconds(),
            **{k: marker["extra"][k] for k in ("cost", "gpu", "attempts") if k in marker["extra"]},
        },
    }
    validate_against(metrics, "metrics.schema.yaml", str(out_metrics))
    write_json(out_metrics, metrics)


# -- hf_data folder ---------------------------------------------------------------------------


def _same_score(a: float, b: float) -> bool:
    """Equal as the table shows them (the log prints %.2f); NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return f"{a:.2f}" == f"{b:.2f}"


def pull_run_folder(cell: Cell, config: dict, metrics_path: Path, out_dir: Path) -> None:
    """Pull only the cell's folder from the store into ``out_dir/data/FOLDER`` and check it."""
    metrics = _read_json(metrics_path)
    folder = metrics["data_folder"]
    with staged_dir(out_dir) as tmp:
        path = store_from_config(config).download(folder, tmp)
        run = read_run_folder(path)
        require_train(run)
        check_settings(run, cell.settings)
        score = trial_score(run)
        if not _same_score(score, metrics["total_reward_ma"]):
            raise BenchError(
                f"data/{folder}: trial_metrics total_reward_ma {score:.2f} differs from the "
                f"log's {metrics['total_reward_ma']:.2f}"
            )


def pulled_folder(hf_data_dir: Path) -> Path:
    """The one ``data/FOLDER`` inside a cell's hf_data tree."""
    folders = [p for p in (Path(hf_data_dir) / "data").iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise BenchError(f"{hf_data_dir}: expected exactly one data/FOLDER, found {len(folders)}")
    return folders[0]


# -- plot -------------------------------------------------------------------------------------


def plot_env(env: EnvEntry, hf_data_dirs: list[Path], out_png: Path) -> None:
    from slm_bench.plot import plot_env as draw

    draw(env.env_id, [pulled_folder(d) for d in hf_data_dirs], Path(out_png))


# -- row --------------------------------------------------------------------------------------


def write_row(cell: Cell, config: dict, metrics_path: Path, out_row: Path) -> None:
    """A BENCHMARKS.md row, written only once its data link is verified in the store."""
    metrics = _read_json(metrics_path)
    folder = metrics["data_folder"]
    store = store_from_config(config)
    if not store.exists([folder])[folder]:
        raise BenchError(f"{cell.key}: row not written: data/{folder} is not in {store.repo}")
    score = float(metrics["total_reward_ma"])
    target = parse_target(cell.target) if cell.target else None
    baseline = random_return(cell.env_id, config.get("random_baseline"))
    row = {
        "env_id": cell.env_id,
        "algorithm": cell.label,
        "status": status(score, target, baseline),
        "ma": score,
        "spec_file": cell.spec_file,
        "spec_name": cell.spec_name,
        "hf_folder": folder,
        "hf_url": store.url(folder),
    }
    validate_against(row, "row.schema.yaml", str(out_row))
    write_json(out_row, row)


# -- BENCHMARKS.md ----------------------------------------------------------------------------


def _space_text(space) -> str:
    shape = getattr(space, "shape", None)
    if hasattr(space, "n"):
        return f"{type(space).__name__}({int(space.n)})"
    return f"{type(space).__name__}({', '.join(str(d) for d in shape or ())})"


def docs_line(env: EnvEntry) -> str:
    """SLM-Lab's Docs line: link, state and action spaces (from Gymnasium when it has the env)."""
    if env.docs_line:
        return env.docs_line
    parts = []
    if env.docs.get("url"):
        parts.append(f"[{env.docs.get('title', env.env_id)}]({env.docs['url']})")
    try:
        import gymnasium

        spec_env = gymnasium.make(env.env_id)
        parts += [
            f"State: {_space_text(spec_env.observation_space)}",
            f"Action: {_space_text(spec_env.action_space)}",
        ]
        spec_env.close()
    except Exception:  # noqa: BLE001 - an env Gymnasium cannot build just loses those two fields
        pass
    if env.target:
        parts.append(f"Target reward MA {parse_target(env.target).text}")
    return "**Docs**: " + " | ".join(parts)


def write_benchmarks(
    envs: list[EnvEntry],
    rows_by_env: dict[str, list[Path]],
    plots: dict[str, Path],
    out_md: Path,
    title: str,
    spec_root: Path,
    base_doc: Path | None = None,
) -> None:
    """Render BENCHMARKS.md: update the base doc (or a new one) env by env, row by row.

    SPEC_FILE links are relative to the document, as in SLM-Lab's docs/ (``../slm_lab/...``).
    """
    from slm_bench.table import BenchmarksDoc, ResultRow, new_document

    doc = BenchmarksDoc.read(base_doc) if base_doc else new_document(title)
    # Links are relative to where the document lives: the checkout's docs/ for its own file.
    doc_dir = Path(base_doc or out_md).parent.resolve()
    link_prefix = os.path.relpath(Path(spec_root).resolve(), doc_dir) + "/"
    for env in envs:
        doc.ensure_env(
            env.env_id, docs_line(env), f"**Settings**: {env.settings.line()}", env.phase
        )
        for row_path in rows_by_env[env.env]:
            row = _read_json(row_path)
            doc.upsert_row(
                env.env_id,
                ResultRow.build(
                    row["algorithm"],
                    row["status"],
                    row["ma"],
                    row["spec_file"],
                    row["spec_name"],
                    row["hf_folder"],
                    row["hf_url"],
                    spec_link_prefix="" if link_prefix == "./" else link_prefix,
                ),
            )
        plot = Path(plots[env.env])
        doc.ensure_plot_embed(env.env_id, plot.name, plots_dir=plot.parent.as_posix())
    doc.write(out_md)


def write_benchmarks_for(
    matrix, config: dict, row_paths: list[str], out_md: Path, only: list[str] | None = None
) -> None:
    """The aggregate BENCHMARKS.md (the checkout's own, updated), or a standalone document for
    ``only`` some envs (per-env and per-phase targets)."""

    envs = [matrix.envs[env] for env in only] if only else list(matrix.envs.values())
    rows_by_env = {entry.env: [] for entry in envs}
    for path in map(Path, row_paths):
        rows_by_env[path.parent.parent.name].append(path)
    plots_dir = os.path.relpath(Path("results/plots").resolve(), Path(out_md).parent.resolve())
    plots = {entry.env: Path(plots_dir) / plot_png_name(entry.env_id) for entry in envs}
    write_benchmarks(
        envs,
        rows_by_env,
        plots,
        Path(out_md),
        config["title"],
        spec_root(config),
        base_doc=None if only else base_benchmarks(config),
    )


def base_benchmarks(config: dict) -> Path | None:
    """The BENCHMARKS.md the aggregate updates: the checkout's own, or none (a new document)."""
    checkout = config.get("checkout")
    return Path(checkout["root"]) / checkout["benchmarks"] if checkout else None


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

    rows = [_read_json(path) for path in row_paths]
    write_json(out_json, commit_docs(config, _read_json(updated_json), rows))


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


def write_publish_manifest(config: dict, table: Path, out_manifest: Path, log) -> None:
    """The dry run of publishing: what would be pulled and uploaded where (no network)."""
    from slm_bench.publish import format_manifest

    out_dir = Path(out_manifest).parent
    manifest = format_manifest(
        _publish_plan(config, table, Path("results/hf_data"), out_dir / "README.md")
    )
    log(manifest)
    write_text(out_manifest, manifest + "\n")


def publish_results(config: dict, table: Path, out_report: Path, out_table: Path, log) -> None:
    """Publish the table's runs from the dev repo to the public one (SLM-Lab's workflow)."""
    from slm_bench.publish import format_manifest, publish

    plan = _publish_plan(
        config, table, Path("results/hf_data"), Path(out_report).parent / "README.md"
    )
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

STAGE_LOGS = ("validate_spec", "run_cell", "extract_metrics", "pull_run_folder", "write_row")


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
