"""The per-cell stages: spec -> run -> upload -> metrics -> pulled folder -> row (and the plot).

Each stage reads its inputs, checks them, and writes its outputs atomically, so a failed or
killed job never leaves a half-written target behind. Paths come from the rules.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import datetime
from pathlib import Path

from slm_bench.atomic import staged_dir, write_json
from slm_bench.config_model import BenchConfig, RunnerKind
from slm_bench.durations import now_iso
from slm_bench.errors import BenchError
from slm_bench.formats.baseline import baseline_path, random_return
from slm_bench.formats.logs import read_score
from slm_bench.formats.run_folder import check_settings, read_run_folder, require_train, trial_score
from slm_bench.formats.settings import Frames, parse_target
from slm_bench.formats.spec import audit_spec, max_frame_is_hardcoded, resolve_spec
from slm_bench.formats.status_rule import computed_status
from slm_bench.matrix.config import Cell, EnvEntry
from slm_bench.runners import RunRequest, RunResult, configured_runner
from slm_bench.slurm.job import watchdog_grace_s
from slm_bench.steps.records import finite_score, read_record, same_score
from slm_bench.stores import Store, store_from_config
from slm_bench.trust.cell_lock import cell_writer
from slm_bench.trust.provenance import collect_provenance, write_provenance
from slm_bench.validation import validate_against

RUN_FIELDS = ("cell", "runner", "run_name", "data_folder", "started_at", "ended_at", "extra")
UPLOAD_FIELDS = ("data_folder", "store", "repo", "url")
METRICS_FIELDS = ("data_folder", "total_reward_ma")

# -- spec validated ---------------------------------------------------------------------------


def validate_spec(cell: Cell, policy: str, out_spec: Path, log) -> None:
    """Resolve the cell's spec as SLM-Lab would and audit it against the Settings line."""
    source = f"{cell.spec_file}: {cell.spec_name}"
    body = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
    hardcoded = max_frame_is_hardcoded(cell.spec_path, cell.spec_name, cell.sets)
    warnings = audit_spec(
        body, cell.settings, hardcoded, policy=policy, source=source, env_id=cell.env_id
    )
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


def cell_run_request(
    cell: Cell,
    config: BenchConfig,
    workdir: Path,
    log_path: Path,
    journal_path: Path,
    threads: int,
    fingerprint: str,
    mode: str = "train",
) -> RunRequest:
    """What one of the cell's runs asks its runner for: the training run, or its search.

    The embedded runner gets the spec file's absolute path; SLM-Lab and dstack the path as the
    row names it (relative to the checkout). A train run is sized (sessions, frames) for the
    progress lines; a search's trials have their own budgets. Both take the cell's seed (a
    search derives each trial's from it).
    """
    absolute = config.runner.takes_absolute_spec
    spec_file = str(cell.spec_path.resolve()) if absolute else cell.spec_file
    train = mode == "train"
    return RunRequest(
        spec_file=spec_file,
        spec_name=cell.spec_name,
        sets=cell.sets,
        workdir=workdir,
        log_path=log_path,
        journal_path=journal_path,
        time_limit_s=config.time_limit_s + watchdog_grace_s(),
        threads=threads,
        mode=mode,
        cell=cell.key if train else f"{cell.key} {mode}",
        fingerprint=fingerprint,
        max_session=(cell.settings.max_session or 0) if train else 0,
        max_frame=cell.max_frame if train else Frames(0),
        seed=cell.seed,
    )


def work_fingerprint(spec: bytes, seed: int | None) -> str:
    """A run's or a search's work: the resolved spec and, when fixed, the seed (a remote run is
    re-attached only for the same work; a new seed is new work)."""
    digest = hashlib.sha256(spec)
    if seed is not None:
        digest.update(f"\nseed {seed}".encode())
    return digest.hexdigest()[:16]


def run_fingerprint(spec_json: Path, seed: int | None) -> str:
    """The train run's work, from the cell's spec.json."""
    return work_fingerprint(Path(spec_json).read_bytes(), seed)


def run_with_runner(
    cell: Cell,
    config: BenchConfig,
    folder: Path,
    out_log: Path,
    threads: int,
    fingerprint: str,
    mode: str = "train",
) -> RunResult:
    """One of the cell's runs (its training, or its search) through the configured runner, in
    ``folder/work`` with its journal in ``folder/journal.json``; the log streams to
    ``out_log.partial``, which the caller renames once its outputs are written."""
    workdir = folder / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    partial_log = Path(f"{out_log}.partial")
    request = cell_run_request(
        cell,
        config,
        workdir,
        partial_log,
        folder / "journal.json",
        threads,
        fingerprint=fingerprint,
        mode=mode,
    )
    return configured_runner(config, threads).run(request)


def run_cell(
    cell: Cell, config: BenchConfig, spec_json: Path, out_marker: Path, out_log: Path, threads: int
) -> None:
    """Train the cell with the configured runner; write its log, then its marker.

    The finished run folder stays in the cell's ``work/data/FOLDER`` (``local_folder`` in the
    marker) for ``upload_run``: a failed upload never costs the training. The log streams to a
    ``.partial`` file and the marker is written last, so Snakemake never sees a
    complete-looking output from a run that did not finish.
    """
    cell_dir = Path(out_marker).parent
    with cell_writer(cell_dir, "run_cell"):  # never two runs of the cell at once
        _run_cell(cell, config, spec_json, Path(out_marker), Path(out_log), threads)


def _run_cell(
    cell: Cell, config: BenchConfig, spec_json: Path, out_marker: Path, out_log: Path, threads: int
) -> None:
    cell_dir = out_marker.parent
    if not config.runner.is_remote:  # a local rerun starts clean; remote state is journalled
        shutil.rmtree(cell_dir / "work", ignore_errors=True)
    started = now_iso()
    fingerprint = run_fingerprint(spec_json, cell.seed)
    store = store_from_config(config)  # a bad store option fails here, before any training
    result = run_with_runner(cell, config, cell_dir, out_log, threads, fingerprint)
    partial_log = Path(f"{out_log}.partial")
    provenance = collect_provenance(
        result.runner,
        run_folder=result.folder_path,
        checkout=config.spec_dir if result.runner == RunnerKind.SLM_LAB else None,
        extra=result.extra,
        remote_runner=result.extra.get("inner_runner"),
    )
    if result.folder_path is not None:  # beside SLM-Lab's files, so upload_run takes it along
        write_provenance(result.folder_path, provenance)
    os.replace(partial_log, out_log)
    write_json(
        out_marker,
        {
            "cell": cell.key,
            "runner": result.runner,
            "run_name": result.run_name,
            "data_folder": result.data_folder,
            # None: the runner uploaded from elsewhere (a dstack task uploads itself)
            "local_folder": str(result.folder_path) if result.folder_path else None,
            "store": store.name,
            "repo": store.repo,
            "started_at": started,
            "ended_at": now_iso(),
            "extra": result.extra,
            "provenance": provenance,
        },
    )


# -- upload -----------------------------------------------------------------------------------


def upload_run(config: BenchConfig, marker_path: Path, out_upload: Path, log) -> None:
    """Put the run folder in the store, verify it is there, then write the upload marker.

    Uploads are idempotent (the local store replaces the folder in one rename, the Hub skips
    files it has), so a retry simply uploads again. Only after the marker is written is the
    local copy in the cell's ``work/`` removed; a runner's folder elsewhere (an SLM-Lab
    checkout) is kept, and a remote run's own upload (dstack) is only verified.
    """
    marker = read_record(marker_path, RUN_FIELDS)
    folder = marker["data_folder"]
    store = store_from_config(config)
    local = Path(marker["local_folder"]) if marker.get("local_folder") else None
    if local is not None and local.is_dir():
        log(f"uploading {local} to {store.repo}/data/{folder}")
        store.upload(local)
    elif not store.exists([folder])[folder]:
        # The cell's pulled copy, verified against its metrics when it was pulled: the run
        # reaches a store configured after its upload (local_store.root, hf.dev_repo changed).
        pulled = Path(marker_path).parent / "hf_data" / "data" / folder
        if pulled.is_dir():
            log(f"uploading the cell's pulled copy {pulled} to {store.repo}/data/{folder}")
            store.upload(pulled)
    if not store.exists([folder])[folder]:
        if local is None:
            raise BenchError(
                f"{marker_path}: the runner's upload of data/{folder} is not in {store.repo}"
            )
        if not local.is_dir():
            raise BenchError(
                f"{marker_path}: data/{folder} is not in store {store.repo} and the run folder "
                f"{local} is gone; rerun the run with snakemake --forcerun {marker_path}"
            )
        raise BenchError(f"store {store.repo}: data/{folder} not found after its upload")
    write_json(
        out_upload,
        {
            "data_folder": folder,
            "store": store.name,
            "repo": store.repo,
            "url": store.url(folder),
            "verified_at": now_iso(),
        },
    )
    work = Path(marker_path).parent / "work"
    if local is not None and local.is_dir() and local.resolve().is_relative_to(work.resolve()):
        # Renamed first: a kill while deleting never leaves something that looks like a run.
        trash = work / f".uploaded-{folder}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(local, trash)
        shutil.rmtree(trash, ignore_errors=True)


# -- metrics.json -----------------------------------------------------------------------------


def extract_metrics(cell: Cell, log_path: Path, marker_path: Path, out_metrics: Path) -> None:
    """The score from the log's ``trial_metrics:`` line, checked against the run marker."""
    run_log = read_score(log_path)
    marker = read_record(marker_path, RUN_FIELDS)
    if run_log.data_folder != marker["data_folder"]:
        raise BenchError(
            f"{log_path}: data folder {run_log.data_folder} differs from the run marker's "
            f"{marker['data_folder']}"
        )
    scalar = run_log.trial_metrics
    assert scalar is not None  # read_score refuses a log without a trial_metrics line
    score = finite_score(scalar.get("total_reward_ma"), str(log_path), "total_reward_ma")
    try:
        started = datetime.fromisoformat(marker["started_at"])
        ended = datetime.fromisoformat(marker["ended_at"])
    except (TypeError, ValueError):
        raise BenchError(f"{marker_path}: started_at/ended_at: expected ISO times") from None
    extra = marker["extra"] if isinstance(marker["extra"], dict) else {}
    metrics = {
        "cell": cell.key,
        "env_id": cell.env_id,
        "algorithm": cell.label,
        "spec_file": cell.spec_file,
        "spec_name": cell.spec_name,
        "data_folder": run_log.data_folder,
        "run_name": marker["run_name"],
        "runner": marker["runner"],
        "total_reward_ma": score,
        "frame": scalar.get("frame"),
        "scalar": scalar,
        "run": {
            "started_at": marker["started_at"],
            "ended_at": marker["ended_at"],
            "wall_time_s": (ended - started).total_seconds(),
            **{k: extra[k] for k in ("cost", "gpu", "attempts") if k in extra},
        },
        "provenance": marker.get("provenance"),  # None in a marker written before provenance
    }
    validate_against(metrics, "metrics.schema.yaml", str(out_metrics))
    write_json(out_metrics, metrics)


# -- hf_data folder ---------------------------------------------------------------------------


def uploaded_folder(metrics_path: Path, upload_path: Path) -> tuple[dict, str]:
    """metrics.json and the folder it names, which must be the one the upload verified."""
    metrics = read_record(metrics_path, METRICS_FIELDS)
    finite_score(metrics["total_reward_ma"], str(metrics_path), "total_reward_ma", record=True)
    upload = read_record(upload_path, UPLOAD_FIELDS)
    folder = metrics["data_folder"]
    if upload["data_folder"] != folder:
        raise BenchError(
            f"{upload_path}: data_folder {upload['data_folder']!r} differs from "
            f"{metrics_path}'s {folder!r}; redo both with snakemake --forcerun {metrics_path} "
            f"{upload_path}"
        )
    return metrics, folder


def pull_run_folder(
    cell: Cell, config: BenchConfig, metrics_path: Path, upload_path: Path, out_dir: Path
) -> None:
    """Pull only the cell's folder from the store into ``out_dir/data/FOLDER`` and check it."""
    metrics, folder = uploaded_folder(metrics_path, upload_path)
    with staged_dir(out_dir) as tmp:
        store = store_from_config(config)
        path = store.download(folder, tmp)
        run = read_run_folder(path, shown_as=store.url(folder))  # errors name the stored file
        require_train(run)
        check_settings(run, cell.settings)
        score = trial_score(run)
        if not same_score(score, metrics["total_reward_ma"]):
            raise _score_mismatch(folder, score, Path(metrics_path), metrics)


def _score_mismatch(folder: str, stored: float, metrics_path: Path, metrics: dict) -> BenchError:
    """Which file is wrong, told by the run's log: metrics.json (derived from the log) when the
    log agrees with the stored folder, else the stored folder; and the command that redoes it.

    The log (metrics.json's own input, beside it) is read only here, to place the blame: it is
    not an input of the rule, so adding it did not re-plan every pulled folder."""
    recorded = metrics["total_reward_ma"]
    train_log = metrics_path.with_name("train.log")
    try:
        logged = (read_score(train_log).trial_metrics or {}).get("total_reward_ma")
    except BenchError:
        logged = None
    if isinstance(logged, int | float) and same_score(float(logged), stored):
        return BenchError(
            f"{metrics_path}: total_reward_ma {recorded:.2f} differs from {train_log} and the "
            f"stored data/{folder} ({stored:.2f}); metrics.json is derived from the log: redo "
            f"it with snakemake --forcerun {metrics_path}"
        )
    marker = metrics_path.with_name("run.json")
    return BenchError(
        f"data/{folder}: trial_metrics total_reward_ma {stored:.2f} differs from {metrics_path} "
        f"({recorded:.2f}) and the run's log {train_log}: the stored folder is not this run's; "
        f"rerun the cell with snakemake --forcerun {marker}"
    )


def pulled_folder(hf_data_dir: Path) -> Path:
    """The one ``data/FOLDER`` inside a cell's hf_data tree."""
    data = Path(hf_data_dir) / "data"
    folders = [p for p in data.iterdir() if p.is_dir()] if data.is_dir() else []
    if len(folders) != 1:
        raise BenchError(f"{hf_data_dir}: expected exactly one data/FOLDER, found {len(folders)}")
    return folders[0]


# -- plot -------------------------------------------------------------------------------------


def plot_env(env: EnvEntry, hf_data_dirs: list[Path], out_png: Path) -> None:
    from slm_bench.formats.plot import plot_env as draw

    draw(env.env_id, [pulled_folder(d) for d in hf_data_dirs], Path(out_png))


# -- row --------------------------------------------------------------------------------------


def derive_row(cell: Cell, config: BenchConfig, folder: str, score: float, store: Store) -> dict:
    """The row as computed from its sources: the cell's config, its score and its folder.

    ``status`` is the computed one (✅, ⚠️ or empty) by the configured ``status_rule``; the
    table writes it with its own Legend's symbols. ``settings`` is the Settings line the run
    used (the row's frame budget included), checked against the table's when it is written.
    """
    target = parse_target(cell.target) if cell.target else None
    baseline = random_return(cell.env_id, baseline_path(config))
    return {
        "env_id": cell.env_id,
        "algorithm": cell.label,
        "status": computed_status(score, target, baseline, config.status_rule),
        "ma": score,
        "spec_file": cell.spec_file,
        "spec_name": cell.spec_name,
        "hf_folder": folder,
        "hf_url": store.url(folder),
        "settings": cell.settings.line(),
    }


def write_row(
    cell: Cell, config: BenchConfig, metrics_path: Path, upload_path: Path, out_row: Path
) -> None:
    """A BENCHMARKS.md row, written only once its data link is verified in the store."""
    metrics, folder = uploaded_folder(metrics_path, upload_path)
    store = store_from_config(config)
    if not store.exists([folder])[folder]:
        uploaded = read_record(upload_path).get("url")
        since = f"; it was uploaded to {uploaded}" if uploaded != store.url(folder) else ""
        raise BenchError(
            f"{cell.key}: row not written: data/{folder} is not in store {store.url(folder)}"
            f"{since}: upload it again with snakemake --forcerun {upload_path}"
        )
    score = finite_score(
        metrics["total_reward_ma"], str(metrics_path), "total_reward_ma", record=True
    )
    row = derive_row(cell, config, folder, score, store)
    validate_against(row, "row.schema.yaml", str(out_row))
    write_json(out_row, row)
