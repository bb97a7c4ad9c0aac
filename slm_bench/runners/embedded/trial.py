"""An embedded trial: `meta.max_session` sessions (in parallel processes) as an SLM-Lab run.

``run_trial`` trains the sessions, computes SLM-Lab's session and trial metrics and writes
``data/{name}_{ts}`` in SLM-Lab's layout while printing SLM-Lab's console lines.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from slm_bench.atomic import copy_file
from slm_bench.errors import BenchError
from slm_bench.formats.baseline import random_return
from slm_bench.formats.logs import output_message, running_message, trial_metrics_message
from slm_bench.formats.run_folder import FOLDER_TS_FORMAT, RunLayout, folder_name
from slm_bench.runners.embedded.console import RUN_SPEC, Console
from slm_bench.runners.embedded.output import RunOutput, write_slm_json
from slm_bench.runners.embedded.plan import TrainingPlan, plan_training
from slm_bench.runners.embedded.session import init_worker, train_session, train_session_in_worker

# The runner's own lines name its own modules.
OWN_LINE = ("slm_bench.runners.embedded.trial", "run_trial")
PLAN_LINE = ("slm_bench.runners.embedded.plan", "plan_training")
GRAPH_LINE = ("slm_bench.runners.embedded.trial", "_trial_graph")


def git_sha(spec_file: str) -> str:
    """The commit of the repository holding the spec file, as SLM-Lab records its own checkout's
    (``unknown`` outside a git repository, SLM-Lab's fallback)."""
    path = Path(spec_file)
    where = path.resolve().parent if path.parent.is_dir() else Path.cwd()
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        )
    except (subprocess.CalledProcessError, OSError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _trial_spec(spec: Mapping, run_name: str, folder: str, when: datetime, sha: str) -> dict:
    """The spec as SLM-Lab saves it for a train trial: ``name`` set, ``meta`` extended."""
    trial = copy.deepcopy(dict(spec))
    trial["name"] = run_name
    meta = trial.setdefault("meta", {})
    predir = f"data/{folder}"
    prepath = f"{predir}/{run_name}_t0"
    meta.update(
        rigorous_eval=meta.get("rigorous_eval", 0),
        experiment=0,
        trial=0,
        session=-1,
        cuda_offset=0,
        resume=False,
        experiment_ts=when.strftime(FOLDER_TS_FORMAT),
        prepath=prepath,
        git_sha=sha,
        random_seed=None,
        predir=predir,
        **{
            f"{part}_prepath": f"{predir}/{part}/{run_name}_t0"
            for part in ("graph", "info", "log", "model")
        },
    )
    return trial


def reserve_folder(data_root: Path, run_name: str) -> tuple[str, datetime, Path]:
    """A run folder name nobody holds under ``data_root`` (a later second if needed).

    The name is claimed by creating a hidden ``.{folder}.reserved`` file exclusively, so two runs
    of the same spec started in the same second do not build the same folder.
    """
    data_root.mkdir(parents=True, exist_ok=True)
    when = datetime.now().replace(microsecond=0)
    while True:
        folder = folder_name(run_name, when)
        reservation = data_root / f".{folder}.reserved"
        if not (data_root / folder).exists():
            try:
                os.close(os.open(reservation, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return folder, when, reservation
            except FileExistsError:
                pass
        when += timedelta(seconds=1)


@dataclass(frozen=True)
class SessionJobs:
    """The trial's sessions as jobs: session ``s`` trains with ``seeds[s]``, prints ``prefixes[s]``
    and saves its model at ``model_paths[s]``; ``where`` names the spec in a session's error."""

    plan: TrainingPlan
    seeds: list[int]
    prefixes: list[str]
    model_paths: list[Path]
    output: RunOutput
    where: str

    def args(self, s: int) -> tuple[TrainingPlan, int, int, str, Path]:
        return self.plan, s, self.seeds[s], self.prefixes[s], self.model_paths[s]


def _session_jobs(
    plan: TrainingPlan, layout: RunLayout, seeds: list[int], where: str
) -> SessionJobs:
    prefixes = [layout.session_prefix(s) for s in range(len(seeds))]
    baseline = random_return(plan.env_id) or 0.0
    return SessionJobs(
        plan,
        seeds,
        prefixes=[f"Trial 0 session {s} {prefix}" for s, prefix in enumerate(prefixes)],
        model_paths=[layout.model_dir / f"{prefix}_model.pt" for prefix in prefixes],
        output=RunOutput(layout.root, layout.prefix, baseline, plan.columns),
        where=where,
    )


def _run_sessions(jobs: SessionJobs, console: Console, max_workers: int) -> list[list[list[float]]]:
    """Every session's session_df rows, in session order: here when ``max_workers`` is 1,
    else in a pool of worker processes."""
    if max_workers > 1:
        return _run_sessions_in_pool(jobs, console, max_workers)
    rows = []
    for s in range(len(jobs.seeds)):
        try:
            rows.append(train_session(*jobs.args(s), console, jobs.output))
        except Exception as error:
            raise _session_error(jobs.where, s, error) from error
    return rows


def _run_sessions_in_pool(
    jobs: SessionJobs, console: Console, max_workers: int
) -> list[list[list[float]]]:
    """The sessions in fresh worker processes; their log records reach ``console`` through a
    queue. The first failed session stops the others and fails the trial."""
    n = len(jobs.seeds)
    results: dict[int, list[list[float]]] = {}
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
    log_queue = ctx.Queue()
    executor = ProcessPoolExecutor(
        max_workers=min(max_workers, n),
        mp_context=ctx,
        initializer=init_worker,
        initargs=(log_queue,),
    )
    try:
        pending = {
            executor.submit(train_session_in_worker, *jobs.args(s), jobs.output): s
            for s in range(n)
        }
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(log_queue, console)
            for future in done:
                s = pending.pop(future)
                if (error := future.exception()) is not None:
                    raise _session_error(jobs.where, s, error)
                results[s] = future.result()
        deadline = time.monotonic() + 10  # the last records may still be in the queue's pipe
        while len(console.done) < n and time.monotonic() < deadline:
            _drain(log_queue, console, block=True)
    except BaseException:
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        log_queue.close()
    return [results[s] for s in range(n)]


def _drain(log_queue: Any, console: Console, block: bool = False) -> None:
    while True:
        try:
            record = log_queue.get(timeout=0.2) if block else log_queue.get_nowait()
        except queue.Empty:
            return
        console(record)
        block = False


def _session_error(where: str, session: int, error: BaseException) -> BenchError:
    detail = str(error).strip().splitlines()
    if isinstance(error, OSError) and error.strerror:  # the path, when the error has one
        detail = [f"{error.filename}: {error.strerror}" if error.filename else error.strerror]
    return BenchError(
        f"{where}: session {session} failed: {type(error).__name__}"
        + (f": {detail[-1]}" if detail else "")
    )


def _trial_graph(env_id: str, layout: RunLayout, n_sessions: int, console: Console) -> None:
    """The trial's MA graph, in graph/ and at the top as SLM-Lab names it (drawn by the project's
    `slm-lab plot` look-alike; SLM-Lab's other graphs are not drawn). As in SLM-Lab, a graph that
    cannot be drawn is a warning, not a failed run."""
    from slm_bench.formats.plot import plot_env

    name = f"{layout.trial_prefix}_trial_graph_mean_returns_ma_vs_frames.png"
    title = f"trial graph: {layout.prefix} t0 {n_sessions} sessions"
    try:
        plot_env(env_id, [layout.root], layout.graph_dir / name, title=title)
        copy_file(layout.graph_dir / name, layout.root / name)
    except (BenchError, OSError, ValueError) as error:
        console.log(f"Failed to generate graph: {error}", *GRAPH_LINE, level="WARNING")


def _start(
    spec: dict, spec_file: str, run_name: str, layout: RunLayout, folder: str, when: datetime
) -> None:
    """The folder's subfolders and the trial's spec files, as SLM-Lab writes them at the start."""
    for directory in (layout.info_dir, layout.log_dir, layout.model_dir, layout.graph_dir):
        directory.mkdir(parents=True, exist_ok=True)
    trial_spec = _trial_spec(spec, run_name, folder, when, git_sha(spec_file))
    write_slm_json(layout.spec_json, trial_spec)
    write_slm_json(layout.trial_spec_json, trial_spec)


def _finish(
    plan: TrainingPlan,
    rows: list[list[list[float]]],
    output: RunOutput,
    layout: RunLayout,
    console: Console,
) -> None:
    """The sessions' and the trial's metrics, the trial graph and SLM-Lab's closing lines."""
    # eval is train: the embedded runner runs no separate eval episodes
    metrics_list = [output.write_session(s, r, ("train", "eval")) for s, r in enumerate(rows)]
    trial = output.write_trial(metrics_list)
    _trial_graph(plan.env_id, layout, len(rows), console)
    console.log(trial_metrics_message(trial["scalar"]))
    console.log("Trial 0 done")
    console.log(output_message(layout.root.name), *RUN_SPEC)


def run_trial(
    spec: dict,
    spec_file: str,
    spec_name: str,
    run_name: str,
    data_root: Path,
    mode: str = "train",
    max_workers: int | None = None,
    stream: TextIO | None = None,
    seed: int | None = None,
) -> Path:
    """Train the spec's trial and write its SLM-Lab run folder under ``data_root``.

    Trains ``meta.max_session`` sessions (seeds as SLM-Lab derives them: ``1000 * session +``
    a base, the current time unless ``seed`` is given), up to ``max_workers`` at once in
    separate single-threaded processes (in this process when 1). As SLM-Lab's, the folder fills
    as the run goes (logs, interim metrics); a run that fails removes it, an interrupted or
    killed one leaves it with trial metrics below ``max_frame``. Returns the folder's path.
    """
    if mode != "train":
        raise BenchError(f"{spec_file}: {spec_name}: mode {mode!r} is not supported (only train)")
    plan = plan_training(spec, spec_file, spec_name)
    folder, when, reservation = reserve_folder(Path(data_root), run_name)
    layout = RunLayout(Path(data_root) / folder, run_name)
    n = plan.max_session
    console = Console(
        stream or sys.stdout, layout.trial_log, [layout.session_log(s) for s in range(n)]
    )
    try:
        _start(spec, spec_file, run_name, layout, folder, when)
        reservation.unlink()  # the folder itself holds the name now
        workers = max(1, min(max_workers or os.cpu_count() or 1, n))
        base_seed = int(time.time()) if seed is None else int(seed)
        seeds = [int(1e3 * s + base_seed) % 2**32 for s in range(n)]
        console.log(
            running_message(spec_file, spec_name, mode, n, f"data/{folder}/{run_name}"), *RUN_SPEC
        )
        console.log(
            f"Embedded runner: SB3 {plan.algorithm} on {plan.env_id} ({plan.num_envs} envs, "
            f"{plan.max_frame} frames), {n} sessions on {workers} workers, seeds {seeds}",
            *OWN_LINE,
        )
        for note in plan.notes:
            console.log(note, *PLAN_LINE, level="WARNING")
        jobs = _session_jobs(plan, layout, seeds, f"{spec_file}: {spec_name}")
        _finish(plan, _run_sessions(jobs, console, workers), jobs.output, layout, console)
    except Exception:
        console.close()
        shutil.rmtree(layout.root, ignore_errors=True)
        raise
    finally:
        console.close()
        reservation.unlink(missing_ok=True)
    return layout.root
