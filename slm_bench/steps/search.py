"""The search stages: search a cell, apply its best values, pick the cells that need a search.

A search runs through the configured runner in ``search`` mode (the embedded runner's Optuna
driver, ``slm-lab run ... search``, or either on dstack), exactly like a train run; its folder
goes to the store like any run folder and is refused by every table stage. What the table uses
is only what a search leaves in the spec file, once applied.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from slm_bench.atomic import write_json, write_text
from slm_bench.config_model import BenchConfig
from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import read_run_folder
from slm_bench.formats.spec import resolve_spec
from slm_bench.matrix.config import Cell
from slm_bench.search.patch import apply_values, unified_diff, write_changed, write_values
from slm_bench.search.results import best_trial, read_evaluations, read_trials
from slm_bench.search.space import SearchSpace, read_space, trial_budget
from slm_bench.steps.cell import run_with_runner, work_fingerprint
from slm_bench.steps.records import read_record
from slm_bench.stores import store_from_config
from slm_bench.trust.cell_lock import cell_writer

SOLVED = "✅"


def search_cell(
    cell: Cell,
    config: BenchConfig,
    out_trials: Path,
    out_best: Path,
    out_patch: Path,
    out_log: Path,
    threads: int,
    log,
) -> None:
    """Search the cell's spec; write trials.csv, best.json and spec.patch (the log streams to
    ``search.log.partial`` and is renamed last)."""
    where = f"{cell.spec_file}: {cell.spec_name}"
    spec = resolve_spec(cell.spec_path, cell.spec_name, cell.sets)
    space = read_space(spec, where)  # fail before any training when there is nothing to search
    planned, warnings = trial_budget(spec, space, where)
    _patch(cell, {d.path: d.args[0] for d in space.dimensions}, every=True)  # before training
    for warning in warnings:
        log(f"warning: {warning}")
    outputs = (Path(out_trials), Path(out_best), Path(out_patch), Path(out_log))
    with cell_writer(outputs[1].parent.parent, "search_cell"):  # never two searches of a cell
        _search(cell, config, spec, space, planned, outputs, threads, log)


def _search(
    cell: Cell,
    config: BenchConfig,
    spec: dict,
    space: SearchSpace,
    planned: int,
    outputs: tuple[Path, Path, Path, Path],
    threads: int,
    log,
) -> None:
    out_trials, out_best, out_patch, out_log = outputs
    search_dir = out_best.parent
    fingerprint = work_fingerprint(json.dumps(spec, sort_keys=True).encode(), cell.seed)
    result = run_with_runner(cell, config, search_dir, out_log, threads, fingerprint, "search")
    partial_log = Path(f"{out_log}.partial")
    store = store_from_config(config)
    folder = result.folder_path
    if folder is None:  # a remote search uploaded its folder itself: pull it back
        folder = search_dir / "data" / result.data_folder
        store.download(result.data_folder, folder)
    elif not result.extra.get("uploaded"):
        store.upload(folder)
    if read_run_folder(folder).kind != "search":
        raise BenchError(f"{folder}: the runner wrote a train folder where a search was asked for")
    trials = read_trials(folder, space)
    evaluations = read_evaluations(folder)
    best = best_trial(trials, space, planned, cell.spec_file, cell.spec_name, evaluations)
    best["search_folder"] = folder.name
    best["runner"] = result.runner
    patch = _patch(cell, best["values"])
    write_text(out_trials, trials.to_csv(index=False))
    write_text(out_patch, patch)
    write_json(out_best, best)
    partial_log.replace(out_log)
    score = best["score"]
    log(
        f"{cell.key}: chosen of {len(trials)} trials: trial {best['trial']} with {best['values']}:"
        + (
            f" fresh-seed MA {score['total_reward_ma']:.2f} (95% CI {score['ci'][0]:.2f}"
            f" to {score['ci'][1]:.2f}, {score['n']} sessions); its trial MA"
            if score
            else " total_reward_ma"
        )
        + f" {best['total_reward_ma']:.2f} ({best['chosen_by']})"
    )
    if not patch:
        log(f"{cell.key}: {out_patch} is empty: {cell.spec_file} already holds every chosen value")


def _patch(cell: Cell, values: dict, every: bool = False) -> str:
    """The spec.patch writing the ``values`` the spec does not already hold (``every``: all of
    them, which checks before any training that every searched key can be written)."""
    text = cell.spec_path.read_text(encoding="utf-8")
    args = (text, cell.spec_path, cell.spec_file, cell.spec_name, values, dict(cell.sets))
    new = write_values(*args) if every else write_changed(*args)[0]
    return unified_diff(text, new, cell.spec_file)


def apply_search(
    cell: Cell, config: BenchConfig, best_path: Path, patch_path: Path, out: Path, log
) -> None:
    """Write the best values into the spec file; with a checkout, commit it there (never push).
    An empty patch (the spec already holds every chosen value) touches and commits nothing."""
    best = read_record(best_path, required=("values", "trial", "total_reward_ma"))
    patch = Path(patch_path).read_text(encoding="utf-8")
    written = apply_values(
        cell.spec_path, cell.spec_file, cell.spec_name, best["values"], dict(cell.sets), patch
    )
    record = {"spec_file": cell.spec_file, "values": best["values"], "trial": best["trial"]}
    record["written"] = written
    if written and config.checkout is not None:
        record["commit"] = _commit_spec(cell, config, best)
    write_json(out, record)
    if written:
        log(f"{cell.key}: wrote the best values into {cell.spec_file}; the next build retrains it")
    else:
        log(
            f"{cell.key}: {patch_path} is empty: {cell.spec_file} already holds the chosen"
            " values; nothing written or committed, nothing to retrain"
        )


def _commit_spec(cell: Cell, config: BenchConfig, best: dict) -> str:
    """SLM-Lab's rule: the spec a run used is committed. Local commit only."""
    root = config.spec_dir
    score = best.get("score")  # absent in a best.json written before re-evaluations
    shown = (
        f"fresh-seed MA {score['total_reward_ma']:.2f}, 95% CI {score['ci'][0]:.2f} to"
        f" {score['ci'][1]:.2f}"
        if score
        else f"MA {best['total_reward_ma']:.2f}"
    )
    message = f"spec: {cell.spec_name} best search values (trial {best['trial']}, {shown})"
    git = ["git", "-C", str(root)]
    try:
        subprocess.run([*git, "add", "--", cell.spec_file], check=True, capture_output=True)
        subprocess.run(
            [*git, "commit", "-m", message, "--", cell.spec_file], check=True, capture_output=True
        )
        sha = subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        text = detail.decode(errors="replace").strip().splitlines()
        raise BenchError(
            f"{root}: git commit of {cell.spec_file} failed: {text[-1] if text else error}"
        ) from None
    return sha


def select_failed_cells(rows: dict[str, Path], out: Path, log) -> None:
    """Write the cell keys (``env/algo``) whose row is not solved: SLM-Lab searches only those."""
    failing = []
    for key, path in rows.items():
        if read_record(path, required=("status",))["status"] != SOLVED:
            failing.append(key)
    log(f"cells to search (not {SOLVED}): {', '.join(failing) or 'none'}")
    write_json(out, failing)
