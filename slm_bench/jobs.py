"""Every rule's job: ``"$SLM_BENCH_PYTHON" -c "$SLM_BENCH_JOB" RULE LOG NAME=VALUE ...``.

Each rule's ``shell:`` command (``rules/*.smk``) runs its stage through this one entry, in the
Python that runs Snakemake, with the slm_bench that the plan imported (``job_environment``,
which the Snakefile puts in its environment, so the command text names no path). The command
passes the job's files, wildcards, threads and params by name (``input.spec=PATH``,
``params.cell=LITERAL``: a param or a list of files is a Python literal, written by
Snakemake's ``!r``); the config the plan was made with is a file (``SLM_BENCH_CONFIG``). Each
stage runs in ``job_context``: its log, the one-line error, the failure record, and on a Slurm
node the Slurm job's side.

A rule's command text is part of what Snakemake compares to decide a rerun, so the commands
only name what a job gets; how a stage uses it is decided here. Stages are imported per job:
a light job never imports what training or search needs.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.errors import BenchError

if TYPE_CHECKING:
    from slm_bench.config_model import BenchConfig
    from slm_bench.matrix.config import Cell, Matrix

Log = Callable[[str], None]

CONFIG_DIR = Path(".snakemake") / "slm-bench"
CONFIG_VARIABLE = "SLM_BENCH_CONFIG"


def job_environment(config: Mapping, source: ConfigSource = DEFAULT_SOURCE) -> dict[str, str]:
    """What every job's command expands: this Python, the code that imports the slm_bench the
    plan imported (as Snakemake's scripts had it, wherever the build's folder is) and calls
    ``main``, and the config file (``source``: how its error lines name the config)."""
    root = str(Path(__file__).resolve().parents[1])
    boot = f"import sys; sys.path.insert(0, {root!r}); from slm_bench.jobs import main; main()"
    return {
        "SLM_BENCH_PYTHON": sys.executable,
        "SLM_BENCH_JOB": boot,
        CONFIG_VARIABLE: job_config_file(config, source),
    }


def job_config_file(config: Mapping, source: ConfigSource = DEFAULT_SOURCE) -> str:
    """The config as the jobs read it, with the names of the files it came from: a pickle named
    by its content, written once (every Snakemake process that plans writes the one it plans
    with, a Slurm node's too)."""
    data = pickle.dumps({"config": dict(config), "source": source}, protocol=4)
    path = CONFIG_DIR / f"config-{hashlib.sha256(data).hexdigest()[:20]}.pickle"
    if not path.is_file():
        from slm_bench.atomic import open_atomic

        with open_atomic(path, "wb") as handle:
            handle.write(data)
    return str(path)


@dataclass
class Job:
    """One job as its command gives it: the names Snakemake's ``snakemake`` object had."""

    rule: str
    config: BenchConfig  # the stages take the typed config
    log: list[str]
    input: dict[str, Path] = field(default_factory=dict)  # the stages take paths
    output: dict[str, Path] = field(default_factory=dict)
    input_lists: dict[str, list[Path]] = field(default_factory=dict)  # named lists of files
    params: dict[str, str] = field(default_factory=dict)
    wildcards: dict[str, str] = field(default_factory=dict)
    threads: int = 1

    @classmethod
    def from_argv(cls, argv: list[str]) -> Job:
        if len(argv) < 2:
            raise BenchError("usage: python -m slm_bench.jobs RULE LOG [NAME=VALUE ...]")
        rule, log, *pairs = argv
        config_file = os.environ.get(CONFIG_VARIABLE)
        if not config_file:
            raise BenchError(f"{rule}: {CONFIG_VARIABLE} is not set (the Snakefile sets it)")
        try:
            planned = pickle.loads(Path(config_file).read_bytes())
        except OSError as error:
            where = f"{config_file}: {error.strerror}"
            raise BenchError(f"{where} (the config this job was planned with)") from None
        from slm_bench.config_model import BenchConfig

        config = BenchConfig.from_validated(planned["config"], planned["source"])
        job = cls(rule=rule, config=config, log=[log])
        for pair in pairs:
            name, sep, value = pair.partition("=")
            kind, _, key = name.partition(".")
            if not sep or (kind != "threads" and not key):
                raise BenchError(f"{rule}: job argument {pair!r}: expected KIND.NAME=VALUE")
            if kind == "threads":
                job.threads = int(value)
            elif kind == "input" and value.startswith("["):  # a list of files, by its repr
                job.input_lists[key] = [Path(file) for file in ast.literal_eval(value)]
            elif kind in ("input", "output"):
                getattr(job, kind)[key] = Path(value)
            elif kind in ("params", "wildcards"):
                getattr(job, kind)[key] = value
            else:
                raise BenchError(f"{rule}: job argument {pair!r}: unknown kind {kind!r}")
        return job

    def param(self, name: str) -> Any:
        """A param, as the Snakefile computed it (its repr in the command)."""
        return ast.literal_eval(self.params[name])

    def files(self, name: str) -> list[Path]:
        """A named input that is a list of files (its repr in the command)."""
        return self.input_lists[name]

    def cell(self) -> Cell:
        """The (env, algo) cell of the job, from its ``cell`` param."""
        from slm_bench.matrix.config import Cell

        return Cell.from_params(self.param("cell"), self.config)

    def matrix(self) -> Matrix:
        from slm_bench.matrix.config import build_matrix

        return build_matrix(self.config)


def _validate_spec(job: Job, log: Log) -> None:
    from slm_bench.steps import validate_spec

    validate_spec(job.cell(), job.config.max_frame_policy, job.output["spec"], log=log)


def _run_cell(job: Job, log: Log) -> None:
    from slm_bench.steps import run_cell

    out = job.output
    run_cell(
        job.cell(), job.config, job.input["spec"], out["marker"], out["train_log"], job.threads
    )


def _extract_metrics(job: Job, log: Log) -> None:
    from slm_bench.steps import extract_metrics

    inp = job.input
    extract_metrics(job.cell(), inp["train_log"], inp["marker"], job.output["metrics"])


def _upload_run(job: Job, log: Log) -> None:
    from slm_bench.steps import upload_run

    upload_run(job.config, job.input["marker"], job.output["upload"], log=log)


def _pull_run_folder(job: Job, log: Log) -> None:
    from slm_bench.steps import pull_run_folder

    inp = job.input
    pull_run_folder(job.cell(), job.config, inp["metrics"], inp["upload"], job.output["hf_data"])


def _write_row(job: Job, log: Log) -> None:
    from slm_bench.steps import write_row

    write_row(job.cell(), job.config, job.input["metrics"], job.input["upload"], job.output["row"])


def _plot_env(job: Job, log: Log) -> None:
    from slm_bench.steps import plot_env

    env = job.matrix().envs[job.wildcards["env"]]
    plot_env(env, job.files("hf_data"), job.output["plot"])


def _write_benchmarks(job: Job, log: Log) -> None:
    """The aggregate results/BENCHMARKS.md and the per-env and per-phase documents: each is
    staged here, cross-checked, and installed by the install_table rule."""
    from slm_bench.steps import cell_files, write_benchmarks

    files = cell_files(*(job.files(name) for name in ("rows", "metrics", "uploads", "hf_data")))
    write_benchmarks(
        job.matrix(),
        job.config,
        files,
        job.files("plots"),
        job.output["staged"],
        job.param("only"),
    )


def _audit_specs(job: Job, log: Log) -> None:
    from slm_bench.steps import write_audit

    write_audit(job.matrix(), job.config, job.output["audit"])


def _update_checkout_docs(job: Job, log: Log) -> None:
    from slm_bench.steps import update_checkout_docs

    update_checkout_docs(job.config, job.input["table"], job.files("plots"), job.output["updated"])


def _commit_checkout(job: Job, log: Log) -> None:
    from slm_bench.steps import commit_checkout

    commit_checkout(job.config, job.input["updated"], job.files("rows"), job.output["commit"])


def _publish_manifest(job: Job, log: Log) -> None:
    from slm_bench.steps import write_publish_manifest

    write_publish_manifest(
        job.config, job.input["table"], job.param("hf_data"), job.output["manifest"], log=log
    )


def _publish(job: Job, log: Log) -> None:
    from slm_bench.steps import publish_results

    out = job.output
    publish_results(
        job.config, job.input["table"], job.param("hf_data"), out["report"], out["table"], log=log
    )


def _status(job: Job, log: Log) -> None:
    from slm_bench.monitor.status import print_status

    print_status(job.matrix(), job.config, log, on_slurm=job.param("slurm"))


def _cancel(job: Job, log: Log) -> None:
    from slm_bench.steps.cancel import cancel_remote

    cancel_remote(job.matrix(), job.param("slurm"), log=log)


def _cell_stats(job: Job, log: Log) -> None:
    from slm_bench.steps.stats import write_cell_stats

    write_cell_stats(
        job.cell(), job.param("random_return"), job.input["hf_data"], job.output["stats"], log=log
    )


def _table_stats(job: Job, log: Log) -> None:
    from slm_bench.steps.stats import write_table_stats

    out = job.output
    write_table_stats(job.files("stats"), job.param("phases"), out["summary"], out["profile"])


def _compare_tables(job: Job, log: Log) -> None:
    from slm_bench.statistics.compare import write_comparison

    write_comparison(
        job.files("stats"),
        job.param("spec_names"),
        job.param("reference"),
        float(job.param("min_effect")),
        job.output["md"],
        job.output["json"],
    )


def _compare(job: Job, log: Log) -> None:
    from slm_bench.statistics.compare import check_comparison

    check_comparison(job.input["json"], bool(job.param("gate")), job.output["checked"], log=log)


def _report_overview(job: Job, log: Log) -> None:
    from slm_bench.steps.report import write_overview_page

    write_overview_page(
        job.param("envs"),
        job.param("cells"),
        job.param("plots"),
        job.input["summary"],
        job.input["profile"],
        job.param("compare"),
        job.output["page"],
    )


def _report_benchmarks(job: Job, log: Log) -> None:
    from slm_bench.steps.report import write_benchmarks_page

    write_benchmarks_page(job.input["table"], job.output["page"])


def _report_env(job: Job, log: Log) -> None:
    from slm_bench.steps.report import write_env_page

    write_env_page(job.param("env"), job.param("cells"), job.input["plot"], job.output["page"])


def _report_compare(job: Job, log: Log) -> None:
    from slm_bench.steps.report import write_compare_page

    write_compare_page(job.input["md"], job.output["page"])


def _search_cell(job: Job, log: Log) -> None:
    from slm_bench.steps.search import search_cell

    out = job.output
    search_cell(
        job.cell(),
        job.config,
        out["trials"],
        out["best"],
        out["patch"],
        out["search_log"],
        job.threads,
        log=log,
    )


def _apply_search(job: Job, log: Log) -> None:
    from slm_bench.steps.search import apply_search

    inp = job.input
    apply_search(job.cell(), job.config, inp["best"], inp["patch"], job.output["applied"], log=log)


def _select_failed_cells(job: Job, log: Log) -> None:
    from slm_bench.steps.search import select_failed_cells

    rows = dict(zip(job.param("cells"), job.files("rows"), strict=True))
    select_failed_cells(rows, job.output["cells"], log=log)


STAGES: dict[str, Callable[[Job, Log], None]] = {
    "validate_spec": _validate_spec,
    "run_cell": _run_cell,
    "extract_metrics": _extract_metrics,
    "upload_run": _upload_run,
    "pull_run_folder": _pull_run_folder,
    "write_row": _write_row,
    "plot_env": _plot_env,
    "write_benchmarks": _write_benchmarks,
    "write_env_benchmarks": _write_benchmarks,
    "write_phase_benchmarks": _write_benchmarks,
    "audit_specs": _audit_specs,
    "update_checkout_docs": _update_checkout_docs,
    "commit_checkout": _commit_checkout,
    "publish_manifest": _publish_manifest,
    "publish": _publish,
    "status": _status,
    "cancel": _cancel,
    "cell_stats": _cell_stats,
    "table_stats": _table_stats,
    "compare_tables": _compare_tables,
    "compare": _compare,
    "report_overview": _report_overview,
    "report_benchmarks": _report_benchmarks,
    "report_env": _report_env,
    "report_compare": _report_compare,
    "search_cell": _search_cell,
    "apply_search": _apply_search,
    "select_failed_cells": _select_failed_cells,
}


def main(argv: list[str] | None = None) -> None:
    from slm_bench.snakemake_io import job_context
    from slm_bench.terminal import write_line

    try:
        job = Job.from_argv(sys.argv[1:] if argv is None else argv)
        stage = STAGES.get(job.rule)
        if stage is None:
            raise BenchError(f"{job.rule}: no such stage (expected one of {', '.join(STAGES)})")
    except BenchError as error:  # a command no rule writes: before any log is open
        write_line(f"error: {error}")
        raise SystemExit(2) from None
    with job_context(job) as log:
        stage(job, log)


if __name__ == "__main__":
    main()
