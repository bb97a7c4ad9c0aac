"""BENCHMARKS.md: rows cross-checked against their sources, rendered, then installed.

A table is never lost: the table rules write a *staged* file beside the table
(``BENCHMARKS.staged.md``), and ``install_table`` hard-links it into place with one rename. A
failing table job therefore leaves the previous ``BENCHMARKS.md`` exactly as it was (Snakemake
deletes only the staged file), and a table job that fails keeps the staged file missing, so the
next run redoes it.

A row is derived, never trusted as typed: before it is published, each row.json is compared
field by field with what its sources say (the cell's config, metrics.json, the upload marker,
the pulled folder's own trial score, the store), and a row that disagrees is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.config_model import BenchConfig
from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import (
    BenchmarksDoc,
    ResultRow,
    documented_frames,
    new_document,
)
from slm_bench.formats.naming import plot_png_name
from slm_bench.formats.run_folder import read_run_folder, trial_score
from slm_bench.formats.settings import parse_settings_line, parse_target
from slm_bench.matrix.config import EnvEntry, Matrix
from slm_bench.steps.cell import derive_row, pulled_folder, uploaded_folder
from slm_bench.steps.records import finite_score, read_record, same_score
from slm_bench.stores import Store, require_folders, store_from_config


@dataclass(frozen=True)
class CellFiles:
    """The files one row of the table is checked against (all inputs of the table rule)."""

    row: Path
    metrics: Path
    upload: Path
    hf_data: Path

    @property
    def env(self) -> str:
        return self.row.parent.parent.name

    @property
    def algo(self) -> str:
        return self.row.parent.name


def cell_files(rows, metrics, uploads, hf_data) -> list[CellFiles]:
    """Zip the table rule's per-cell input lists (one entry per cell, in the same order)."""
    return [
        CellFiles(Path(r), Path(m), Path(u), Path(h))
        for r, m, u, h in zip(rows, metrics, uploads, hf_data, strict=True)
    ]


def checked_row(matrix: Matrix, config: BenchConfig, files: CellFiles, store: Store) -> dict:
    """The cell's row as derived from its sources; row.json must say exactly the same."""
    cell = matrix.cell(files.env, files.algo)
    row = read_record(files.row)
    if "ma" in row:
        finite_score(row["ma"], str(files.row), "ma", record=True)
    metrics, folder = uploaded_folder(files.metrics, files.upload)
    score = finite_score(
        metrics["total_reward_ma"], str(files.metrics), "total_reward_ma", record=True
    )
    pulled = pulled_folder(files.hf_data)
    if pulled.name != folder:
        raise BenchError(f"{files.hf_data}: holds data/{pulled.name}, metrics name {folder}")
    trial = trial_score(read_run_folder(pulled))
    if not same_score(trial, score):
        raise BenchError(
            f"{pulled}: trial total_reward_ma {trial:.2f} differs from {files.metrics}'s "
            f"{score:.2f} (the pulled copy was changed: pull it again with snakemake "
            f"--forcerun {files.hf_data})"
        )
    derived = derive_row(cell, config, folder, score, store)
    for key, value in derived.items():
        if key == "settings" and key not in row:  # a row.json written before it was recorded
            continue
        if row.get(key) != value:
            raise BenchError(
                f"{files.row}: {key} {row.get(key)!r} differs from {value!r} derived from "
                f"{files.metrics} and the config (a row is derived, never edited: redo it "
                f"with snakemake --forcerun {files.row})"
            )
    unknown = sorted(set(row) - set(derived))
    if unknown:
        raise BenchError(f"{files.row}: unexpected field {unknown[0]!r}")
    return derived


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
    if target := parse_target(env.target):  # the config refuses a target it cannot read
        parts.append(f"Target reward MA {target.text}")
    return "**Docs**: " + " | ".join(parts)


def render_benchmarks(
    envs: list[EnvEntry],
    rows_by_env: dict[str, list[dict]],
    plots: dict[str, Path],
    doc_dir: Path,
    title: str,
    specs_dir: Path,
    base_doc: Path | None = None,
    store: Store | None = None,
) -> str:
    """BENCHMARKS.md's text: the base doc (or a new one) updated env by env, row by row.

    Links are relative to ``doc_dir``, where the document lives, or to the base doc's folder
    (SPEC_FILE links as in SLM-Lab's docs/, ``../slm_lab/...``; plots as ``plots/...``; the
    local store's data folders likewise, through ``store.link``; Hub links are URLs).
    """
    doc = BenchmarksDoc.read(base_doc) if base_doc else new_document(title)
    link_base = Path(base_doc).parent.resolve() if base_doc else doc_dir.resolve()
    link_prefix = os.path.relpath(Path(specs_dir).resolve(), link_base) + "/"
    for env in envs:
        doc.ensure_env(
            env.env_id, docs_line(env), f"**Settings**: {env.settings.line()}", env.phase
        )
        for row in rows_by_env[env.env]:
            # A checkout's table refuses a row run under other Settings than its own (or a
            # budget the file documents): a row never lands silently under another Settings line.
            run_settings = (
                parse_settings_line(row["settings"], f"{env.env_id} {row['algorithm']}")
                if base_doc and row.get("settings")
                else None
            )
            spec_file, spec_prefix = _spec_text_and_prefix(row["spec_file"], link_prefix, link_base)
            doc.upsert_row(
                env.env_id,
                ResultRow.build(
                    row["algorithm"],
                    row["status"],
                    row["ma"],
                    spec_file,
                    row["spec_name"],
                    row["hf_folder"],
                    store.link(row["hf_folder"], link_base) if store else row["hf_url"],
                    spec_link_prefix=spec_prefix,
                ),
                run_settings=run_settings,
                budget_of=documented_frames,
            )
        plot = plots[env.env]
        doc.ensure_plot_embed(env.env_id, plot.name, plots_dir=plot.parent.as_posix())
    return doc.render()


def _spec_text_and_prefix(spec_file: str, prefix: str, link_base: Path) -> tuple[str, str]:
    """A row's SPEC_FILE text and the prefix that makes it a link from the table. An absolute
    spec_file (inside the project: the plan refuses others) is shown relative to the project
    and linked relative to the table, never as this machine's path."""
    if Path(spec_file).is_absolute():
        project = Path.cwd().resolve()
        spec_file = Path(spec_file).resolve().relative_to(project).as_posix()
        prefix = os.path.relpath(project, link_base) + "/"
    return spec_file, "" if prefix == "./" else prefix


def write_benchmarks(
    matrix: Matrix,
    config: BenchConfig,
    cells: list[CellFiles],
    plot_paths: Sequence[str | Path],
    out_staged: Path,
    only: list[str] | None = None,
) -> None:
    """Stage the aggregate BENCHMARKS.md (the checkout's own, updated), or a standalone
    document for ``only`` some envs (per-env and per-phase targets), beside the table.

    Every row is cross-checked first, and the store is asked once for all their folders.
    """
    envs = [matrix.envs[env] for env in only] if only else list(matrix.envs.values())
    store = store_from_config(config)
    rows_by_env: dict[str, list[dict]] = {entry.env: [] for entry in envs}
    for files in cells:
        rows_by_env[files.env].append(checked_row(matrix, config, files, store))
    require_folders(store, [row["hf_folder"] for rows in rows_by_env.values() for row in rows])
    doc_dir = Path(out_staged).parent
    by_name = {Path(path).name: Path(path) for path in plot_paths}
    plots = {
        entry.env: Path(
            os.path.relpath(by_name[plot_png_name(entry.env_id)].resolve(), doc_dir.resolve())
        )
        for entry in envs
    }
    text = render_benchmarks(
        envs,
        rows_by_env,
        plots,
        doc_dir,
        config.title,
        config.spec_dir,
        base_doc=None if only else base_benchmarks(config),
        store=store,
    )
    write_text(out_staged, text)  # also removes the temp of a killed earlier write


def base_benchmarks(config: BenchConfig) -> Path | None:
    """The BENCHMARKS.md the aggregate updates: the checkout's own, or none (a new document)."""
    return config.checkout.benchmarks_path if config.checkout else None
