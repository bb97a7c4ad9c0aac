"""HTML pages for ``snakemake --report``: BENCHMARKS.md rendered, an overview (the table with its
statistics, learning curves and the comparison), per-env run info and the comparison.

Snakemake shows each HTML result in an iframe from a data URI, so every page is self-contained:
images are inlined as base64 data URIs and there is no script and no external link to fetch.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import re
from collections.abc import Collection, Iterable
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.durations import format_duration
from slm_bench.errors import BenchError
from slm_bench.formats.run_folder import load_json
from slm_bench.statistics.never_learned import note_of
from slm_bench.trust.provenance import read_provenance

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.2em 1.6em;
       color: #1f2328; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.25em; margin: 1.2em 0 .4em; }
h3 { font-size: 1.05em; margin: 1em 0 .3em; }
table { border-collapse: collapse; margin: .4em 0 .8em; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } .plots img { max-width: 520px; }
.muted { color: #59636e; font-size: .92em; }
.improved { color: #1a7f37; font-weight: 600; } .regressed { color: #cf222e; font-weight: 600; }
.within-noise { color: #59636e; } .no-reference { color: #9a6700; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
code { background: #f6f8fa; padding: 0 3px; border-radius: 3px; }
"""


def data_uri(path: str | Path) -> str:
    """An image inlined, once it decodes: a plot replaced by garbage fails the page, naming it."""
    path = Path(path)
    check_image(path)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def check_image(path: Path) -> None:
    """BenchError naming ``path`` (and how to draw it again) unless it decodes as an image."""
    import matplotlib.image

    try:
        matplotlib.image.imread(path)
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for a bad file
        reason = str(error).strip().splitlines()[:1] or [type(error).__name__]
        raise BenchError(
            f"{path}: not a readable image ({reason[0]}); redo it with snakemake --forcerun {path}"
        ) from None


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(bounds: list[float] | None, digits: int = 2) -> str:
    return "-" if not bounds else f"[{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]"


def _table(
    header: Iterable[str], rows: Iterable[Iterable[str]], numeric: Collection[int] = frozenset()
) -> str:
    """An HTML table; cells are already HTML. ``numeric`` columns are right-aligned."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(verdict: str | None) -> str:
    if not verdict:
        return "-"
    return f'<span class="{verdict.replace(" ", "-")}">{_esc(verdict)}</span>'


# -- BENCHMARKS.md rendered -------------------------------------------------------------------


def render_markdown(text: str, base_dir: Path) -> str:
    """Markdown (GitHub tables) to HTML, with local images inlined; missing images stay links."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)

    def inline(match: re.Match[str]) -> str:
        src = html.unescape(match.group(1))
        path = Path(os.path.normpath(base_dir / src))  # errors name it as the table does
        if "://" in src or not path.is_file():
            return match.group(0)
        return f'src="{data_uri(path)}"'

    return re.sub(r'src="([^"]+)"', inline, rendered)


def write_benchmarks_page(table_md: Path, out_html: Path) -> None:
    table_md = Path(table_md)
    body = render_markdown(table_md.read_text(encoding="utf-8"), table_md.parent)
    write_text(out_html, page("BENCHMARKS.md", body))


# -- overview ---------------------------------------------------------------------------------


def _load_cells(cell_dirs: list[Path]) -> list[dict]:
    """Per cell: its row, metrics, stats and run marker (what exists of them)."""
    cells = []
    for cell_dir in map(Path, cell_dirs):
        cell = {"key": f"{cell_dir.parent.name}/{cell_dir.name}", "dir": cell_dir}
        for name in ("row", "metrics", "stats", "run"):
            path = cell_dir / f"{name}.json"
            cell[name] = load_json(path) if path.is_file() else {}
        cells.append(cell)
    return cells


def _env_table(cells: list[dict], comparison: dict[str, dict]) -> str:
    header = ["Algorithm", "Status", "MA", "mean ± std", "IQM", "IQM 95% CI", "Sessions",
              "Normalised IQM", "Reference MA", "Difference", "Verdict", "Note"]  # fmt: skip
    rows = []
    for cell in cells:
        stats, row, compared = cell["stats"], cell["row"], comparison.get(cell["key"], {})
        normalised = stats.get("normalised") or {}
        std = stats.get("std")
        rows.append(
            [
                _esc(row.get("algorithm") or stats.get("algorithm")),
                _esc(row.get("status")),
                _num(row.get("ma", stats.get("trial_ma"))),
                f"{_num(stats.get('mean'))} ± {_num(std)}" if stats else "-",
                _num(stats.get("iqm")),
                _ci(stats.get("iqm_ci")),
                _esc(stats.get("n", "-")),
                _num(normalised.get("iqm"), 3),
                _num(compared.get("reference_ma")),
                "-" if compared.get("difference") is None else f"{compared['difference']:+.2f}",
                _verdict(compared.get("verdict")),
                _esc(note_of(stats.get("never_learned"))),  # why the MA (SLM-Lab's mean) is low
            ]
        )
    return _table(header, rows, numeric={2, 3, 4, 6, 7, 8, 9})


def _aggregate_line(name: str, aggregate: dict | None) -> list[str]:
    if not aggregate:
        return [_esc(name), "-", "-", "-", "-"]
    return [
        _esc(name),
        _num(aggregate["iqm"], 3),
        _ci(aggregate["iqm_ci"], 3),
        _esc(aggregate["tasks"]),
        _esc(aggregate["n"]),
    ]


def write_overview_page(
    envs: list[dict],
    cell_dirs: list[Path],
    plots: dict[str, Path],
    summary_json: Path,
    profile_png: Path,
    compare_json: Path | None,
    out_html: Path,
) -> None:
    """The front page: per env its table with statistics and verdicts, and its learning curves;
    then the aggregates and the performance profile. ``envs``: ``{env, env_id, phase, target}``."""
    cells = _load_cells(cell_dirs)
    summary = load_json(summary_json)
    comparison = load_json(compare_json) if compare_json else None
    compared = {c["cell"]: c for c in comparison["cells"]} if comparison else {}
    parts = ["<h1>SLM-Lab benchmark results</h1>"]
    if comparison:
        counts = ", ".join(f"{n} {v}" for v, n in comparison["counts"].items() if n)
        parts.append(
            f"<p>Compared with <code>{_esc(comparison['reference'])}</code>: {_esc(counts)}.</p>"
        )
    else:
        parts.append('<p class="muted">No reference table configured: no comparison.</p>')
    for env in envs:
        env_cells = [c for c in cells if c["key"].split("/")[0] == env["env"]]
        parts.append(
            f"<h2>{_esc(env['env_id'])} <span class='muted'>{_esc(env.get('phase'))}"
            f" | target {_esc(env.get('target') or '-')}</span></h2>"
        )
        parts.append(_env_table(env_cells, compared))
        plot = plots.get(env["env"])
        if plot and Path(plot).is_file():
            parts.append(
                f'<div class="plots"><img alt="{_esc(env["env_id"])} learning curves" '
                f'src="{data_uri(Path(plot))}"></div>'
            )
    parts.append("<h2>Aggregate IQM of normalised scores</h2>")
    parts.append(
        '<p class="muted">0 = a random policy, 1 = the target; 95% stratified-bootstrap CI.</p>'
    )
    lines = [_aggregate_line("whole table", summary.get("table"))]
    lines += [_aggregate_line(k, v) for k, v in summary.get("by_phase", {}).items()]
    lines += [_aggregate_line(k, v) for k, v in summary.get("by_env", {}).items()]
    lines += [_aggregate_line(k, v) for k, v in summary.get("by_algorithm", {}).items()]
    parts.append(_table(["Group", "IQM", "95% CI", "Tasks", "Sessions"], lines, numeric={1, 3, 4}))
    parts.append(
        f'<div class="plots"><img alt="performance profile" src="{data_uri(Path(profile_png))}">'
        "</div>"
    )
    write_text(out_html, page("Overview", "\n".join(parts)))


# -- per env: run info ------------------------------------------------------------------------


def _run_rows(cell: dict, provenance: dict | None) -> list[list[str]]:
    run, metrics = cell["run"], cell["metrics"]
    timing = metrics.get("run") or {}
    wall = timing.get("wall_time_s")
    rows = [
        ["Runner", _esc(run.get("runner") or metrics.get("runner"))],
        ["Data folder", f"<code>{_esc(run.get('data_folder'))}</code>"],
        ["Started / ended", f"{_esc(timing.get('started_at'))} / {_esc(timing.get('ended_at'))}"],
        ["Wall time", _esc(format_duration(wall) if wall is not None else None) or "-"],
        ["Cost", _esc(f"${timing['cost']:.2f}" if timing.get("cost") is not None else "-")],
        ["GPU", _esc(timing.get("gpu") or "-")],
    ]
    if provenance:
        bench = provenance.get("slm_bench") or {}
        runner = provenance.get("runner") or {}
        machine = provenance.get("machine") or {}
        python = provenance.get("python") or {}
        versions = runner.get("packages") or {}
        runner_text = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        if runner.get("slm_lab_git_sha"):
            runner_text = f"SLM-Lab {runner['slm_lab_git_sha'][:10]}" + (
                f" (v{runner['slm_lab_version']})" if runner.get("slm_lab_version") else ""
            )
        commit = bench.get("commit")
        rows += [
            [
                "slm-bench",
                _esc(f"{bench.get('version')} @ {commit[:10] if commit else 'no git'}")
                + (" (modified)" if bench.get("dirty") else ""),
            ],
            ["Runner versions", _esc(runner_text or "-")],
            ["Python", _esc(f"{python.get('implementation', '')} {python.get('version', '')}")],
            [
                "Machine",
                _esc(
                    ", ".join(
                        str(v)
                        for v in (
                            machine.get("cpu_model"),
                            f"{machine['cpu_cores']} cores" if machine.get("cpu_cores") else None,
                            machine.get("gpu"),
                            machine.get("instance_type"),
                        )
                        if v
                    )
                    or "-"
                ),
            ],
            ["Seeds", _esc(provenance.get("seeds") or f"- ({provenance.get('source', '')})")],
        ]
    else:
        rows.append(["Provenance", '<span class="muted">not recorded for this run</span>'])
    return rows


def write_env_page(env: dict, cell_dirs: list[Path], plot: Path | None, out_html: Path) -> None:
    """One env: per cell the sessions' final MAs, the statistics, run info and provenance."""
    from slm_bench.steps import pulled_folder

    parts = [
        f"<h1>{_esc(env['env_id'])}</h1>",
        f"<p class='muted'>{_esc(env.get('phase'))} | target {_esc(env.get('target') or '-')}</p>",
    ]
    for cell in _load_cells(cell_dirs):
        stats = cell["stats"]
        hf_data = cell["dir"] / "hf_data"
        folder = pulled_folder(hf_data) if (hf_data / "data").is_dir() else None
        provenance = read_provenance(cell["run"], folder)
        seeds = (provenance or {}).get("seeds") or []
        label = stats.get("algorithm") or cell["metrics"].get("algorithm") or cell["key"]
        parts.append(
            f"<h2>{_esc(label)} <span class='muted'>"
            f"{_esc(cell['metrics'].get('spec_name'))}</span></h2>"
        )
        flagged = stats.get("never_learned") or {}
        why = {s["session"]: "; ".join(s["reasons"]) for s in flagged.get("sessions", [])}
        sessions = [
            [
                _esc(s["session"]),
                _num(s["final_ma"]),
                _esc(seeds[i] if i < len(seeds) else "-"),
                _esc(f"never learned: {why[s['session']]}" if s["session"] in why else ""),
            ]
            for i, s in enumerate(stats.get("sessions", []))
        ]
        figures = [
            ["MA (trial)", _num(stats.get("trial_ma"))],
            ["mean ± std", f"{_num(stats.get('mean'))} ± {_num(stats.get('std'))}"],
            ["mean 95% CI", _ci(stats.get("mean_ci"))],
            ["IQM", _num(stats.get("iqm"))],
            ["IQM 95% CI", _ci(stats.get("iqm_ci"))],
            ["Normalised IQM", _num((stats.get("normalised") or {}).get("iqm"), 3)],
            [
                "Random / target",
                f"{_num(stats.get('random_return'))} / {_esc(stats.get('target'))}",
            ],
        ]
        parts.append('<div class="row">')
        if note_of(flagged):
            parts.append(
                f"<p><strong>{_esc(note_of(flagged))}</strong>: the MA is SLM-Lab's"
                " mean over every session, these included.</p>"
            )
        parts.append(_table(["Session", "Final MA", "Seed", "Note"], sessions, numeric={0, 1}))
        parts.append(_table(["Statistic", "Value"], figures, numeric={1}))
        parts.append(_table(["Run", ""], _run_rows(cell, provenance)))
        parts.append("</div>")
    if plot and Path(plot).is_file():
        parts.append(f'<div class="plots"><img alt="learning curves" src="{data_uri(plot)}"></div>')
    write_text(out_html, page(env["env_id"], "\n".join(parts)))


# -- comparison -------------------------------------------------------------------------------


def write_compare_page(compare_md: Path, out_html: Path) -> None:
    body = render_markdown(Path(compare_md).read_text(encoding="utf-8"), Path(compare_md).parent)
    for verdict in ("improved", "within noise", "regressed"):
        body = body.replace(f"{verdict}</td>", f"{_verdict(verdict)}</td>")
    write_text(out_html, page("Comparison", body))
