"""Runners: the seam between the pipeline and whatever trains.

A runner takes (SPEC_FILE, SPEC_NAME, ``-s`` sets, mode) and produces an SLM-Lab run: a log with
SLM-Lab's lines (``SLM-Lab: Running ...``, ``trial_metrics: ...``) and a data folder in SLM-Lab's
layout that ends up in the store. Everything downstream reads only those, so runners are
interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from slm_bench.config_model import BenchConfig, RunnerKind, plain
from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.formats.settings import Frames


@dataclass(frozen=True)
class RunRequest:
    """What to run and where its traces go.

    ``workdir`` is the current directory of the run: SLM-Lab-style runners create ``data/FOLDER``
    under it. ``log_path`` receives the run's console output (the pipeline renames it into place
    when the run succeeds). ``journal_path`` is the cell's run journal: a JSON file that is not a
    Snakemake output, so it survives a restart; a remote runner records its run name and attempts
    there *before* waiting, and a restarted pipeline re-attaches to what it finds. ``fingerprint``
    identifies the resolved spec + settings, so a journal entry is only re-attached for the same
    work. ``max_session`` and ``max_frame`` (the cell's ``Frames``; 0: unknown) size the progress
    lines. ``seed`` fixes the run's seeds (sessions get ``seed + 1000 * session``) where the
    runner can; None: fresh ones.
    """

    spec_file: str
    spec_name: str
    sets: dict[str, str]
    workdir: Path
    log_path: Path
    journal_path: Path
    time_limit_s: float
    threads: int = 1
    mode: str = "train"
    cell: str = ""
    fingerprint: str = ""
    max_session: int = 0
    max_frame: Frames = Frames(0)
    seed: int | None = None


@dataclass
class RunResult:
    """A finished run: its name, the data folder's name (``FOLDER`` in ``data/FOLDER``), the local
    copy of that folder when the runner has one, and runner-specific facts (cost, gpu, attempts).
    """

    run_name: str
    runner: str
    data_folder: str
    folder_path: Path | None = None
    extra: dict = field(default_factory=dict)


class Runner(Protocol):
    name: str

    def run(self, request: RunRequest) -> RunResult: ...


def make_runner(
    kind: RunnerKind | str, options: Mapping | None = None, source: ConfigSource = DEFAULT_SOURCE
) -> Runner:
    """Build the runner of ``kind`` from its ``options``: the one place a runner is chosen.
    ``source`` names the config in error lines."""
    from slm_bench.errors import BenchError

    try:
        kind = RunnerKind(kind)
    except ValueError:
        raise BenchError(
            f"{source.where('runner')}: unknown runner '{kind}' (expected embedded, slm-lab or"
            " dstack)"
        ) from None
    options = dict(options or {})
    if kind is RunnerKind.EMBEDDED:
        from slm_bench.runners.process import embedded_runner

        return embedded_runner(options)
    if kind is RunnerKind.SLM_LAB:
        from slm_bench.runners.process import slm_lab_runner

        return slm_lab_runner(options)
    from slm_bench.runners.dstack import DstackRunner

    return DstackRunner(options)


def runner_options(config: BenchConfig, threads: int) -> dict:
    """What the config's runner is built from: its section of the config and what the pipeline
    tells it (sessions in parallel, the checkout, the spec root, the store)."""
    if config.runner is RunnerKind.EMBEDDED:
        return {"workers": threads, "reevaluate_top": config.search_reevaluate_top}
    if config.runner is RunnerKind.SLM_LAB:
        return {
            **plain(config.slm_lab),
            "checkout": str(config.spec_dir),
            "store": config.store.value,
        }
    options = plain(config.dstack)
    options["store"] = {"name": config.store.value, **plain(config.hf)}
    options["spec_root"] = str(config.spec_dir)
    options["source"] = config.source  # how the runner's error lines name the config
    if config.checkout is not None:  # the runner applies the checkout's own .dstack task
        options["checkout"] = config.checkout.root
    return options


def configured_runner(config: BenchConfig, threads: int) -> Runner:
    """The runner the config names, with its options."""
    return make_runner(config.runner, runner_options(config, threads), config.source)
