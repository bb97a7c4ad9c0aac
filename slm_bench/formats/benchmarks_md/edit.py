"""Surgical edits of BENCHMARKS.md's structures: rows, env sections, phases, plots, links.

``BenchmarksDoc`` is a ``Document`` (``slm_bench.formats.benchmarks_md.document``) with the edits
the workflow makes, each built on the document's line edits: it replaces or inserts whole lines and
never rewrites others, and the index is rebuilt after each, so sections taken before an edit are
stale. Rows are written in the columns of the table they land in (any layout the file has used)
and with the status symbols of the file's own Legend line.

Frame budgets (``slm_bench.formats.benchmarks_md.budgets``) are read from a document, not by it: an
edit that must allow a row's documented budget is given a ``BudgetLookup``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md.document import Document
from slm_bench.formats.benchmarks_md.model import (
    FORM_GROUP,
    FORM_SECTION,
    TABLE_GROUPED,
    TABLE_RESULT,
    EnvSection,
    Region,
)
from slm_bench.formats.benchmarks_md.parse import DOCS_PREFIX, SETTINGS_PREFIX
from slm_bench.formats.benchmarks_md.rows import (
    RESULT_HEADER,
    RESULT_SEPARATOR,
    ResultRow,
    render_cells,
    split_cells,
    split_ma,
)
from slm_bench.formats.naming import algorithm_rank, env_base
from slm_bench.formats.settings import Frames, Settings, parse_settings_line
from slm_bench.formats.status_rule import STATUS_FAILED, status_label

# The max_frame a document states for a row of a section as its own budget (an exact number),
# or None: ``slm_bench.formats.benchmarks_md.budgets.documented_frames``.
BudgetLookup = Callable[[Document, EnvSection, ResultRow], int | None]

_PHASE_NUMBER = re.compile(r"^Phase[ \t]+(\d+)\b")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])( *\1){2,} *$")
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class BenchmarksDoc(Document):
    """SLM-Lab's BENCHMARKS.md with the edits the workflow makes to it."""

    def _require_env(self, env_id: str) -> EnvSection:
        section = self.find_env(env_id)
        if section is None:
            raise BenchError(
                f"{self.source}: env {env_id!r} has no results section (expected a "
                f"'#### N.M {env_id}' heading or a group in an '| ENV | MA |' table)"
            )
        return section

    # ------------------------------------------------------------------------------- rows

    def upsert_row(
        self,
        env_id: str,
        row: ResultRow,
        run_settings: Settings | None = None,
        budget_of: BudgetLookup | None = None,
    ) -> None:
        """Replace the env's row for the same algorithm (and spec_name, if the algorithm has
        several rows), or insert the row in SLM-Lab's algorithm order.

        The row is written in the columns of the env's table, whatever layout it has; its status
        (``✅``, ``⚠️`` or empty, as computed) with the symbols of the file's Legend line. In a
        shared (Atari/Playground) table a new row goes at the end of the env's group, the order
        the file itself uses. ``run_settings``, when given, are the Settings the row was run
        under: a row run under other Settings than its table's (and not a budget ``budget_of``
        finds in the file) is refused (``check_run_settings``).
        """
        section, match = self._row_place(self._require_env(env_id), row)
        if run_settings is not None:
            self.check_run_settings(section, row, run_settings, budget_of)
        row = replace(row, env=env_id, status=self.legend().symbol(row.status))
        if section.form == FORM_GROUP:
            self._upsert_group_row(section, match, row)
            return
        if section.table is None:
            raise BenchError(
                f"{self.source}: section {env_id!r} has no results table (expected a "
                f"'{RESULT_HEADER}' table)"
            )
        text = row.render_as(section.table.header)
        if match is not None:
            self.replace_line(section.row_lines[match], text)
            return
        rank = algorithm_rank(row.algorithm)
        at = section.table.start + 2
        for i, existing in zip(section.row_lines, section.rows, strict=True):
            if algorithm_rank(existing.algorithm) <= rank:
                at = i + 1
        self.insert_lines(at, [text])

    def _upsert_group_row(self, section: EnvSection, match: int | None, row: ResultRow) -> None:
        table = section.table
        assert table is not None
        # Tables with one row per game write the env on every row; grouped ones on the first.
        every_row = all(split_cells(self.line(i))[0] for i in table.row_indexes)
        if match is not None:
            line = section.row_lines[match]
            show = every_row or line == section.row_lines[0]
            row = replace(row, ma=self._marked_ma(section, section.rows[match], row))
            self.replace_line(line, row.render_as(table.header, show))
        else:  # groups keep the file's own order: append at the group's end
            self.insert_lines(section.row_lines[-1] + 1, [row.render_as(table.header, every_row)])

    def _marked_ma(self, section: EnvSection, old: ResultRow, new: ResultRow) -> str:
        """The new MA with the status marker the old MA cell carried (a table without a Status
        column), or recomputed: a failure marker stays while the new score fails the env's
        target and goes once it does not; without a target (nothing to compute) it stays."""
        pre, _, post = split_ma(old.ma)
        marker = (pre + post).strip()
        if not marker:
            return new.ma
        legend = self.legend()
        failure = status_label(legend.canonical(marker)) == "Failed"
        if failure and section.target is not None and legend.canonical(new.status) != STATUS_FAILED:
            return new.ma
        return f"{pre}{new.ma}{post}"

    def check_run_settings(
        self,
        section: EnvSection,
        row: ResultRow,
        run: Settings,
        budget_of: BudgetLookup | None = None,
    ) -> None:
        """Refuse a row whose run used other Settings than its table's Settings line.

        A documented frame budget is the one allowed difference: the row's max_frame may be the
        budget ``budget_of`` finds in this document for it
        (``slm_bench.formats.benchmarks_md.budgets.documented_frames``).
        """
        if section.settings_line is None:
            return
        table = parse_settings_line(section.settings_line, f"{self.source}: {section.env_id}")
        expected = [table]
        frames = budget_of(self, section, row) if budget_of is not None else None
        if frames is not None:
            expected.append(replace(table, max_frame=Frames(frames)))
        if run not in expected:
            raise BenchError(
                f"{self.source}: {section.env_id} {row.algorithm} {row.spec_name}: run with "
                f"Settings '{run.line()}' but the table's Settings line says '{table.line()}' "
                "(expected the table's Settings or a documented frame budget; rerun, or edit the "
                "Settings line by hand first)"
            )

    def _row_place(self, first: EnvSection, row: ResultRow) -> tuple[EnvSection, int | None]:
        """The section (of an env split over several tables) and row index a row replaces, or
        the section a new row goes into: the one already holding its algorithm, else the first."""
        sections = [s for s in self.env_sections() if s.env_id == first.env_id]
        for section in sections:
            match = _matching_row(section, row)
            if match is not None:
                return section, match
        same = (s for s in sections if any(r.algorithm == row.algorithm for r in s.rows))
        return next(same, first), None

    # ----------------------------------------------------------------------- env sections

    def ensure_env(
        self, env_id: str, docs_line: str, settings_line: str, phase: str | None = None
    ) -> EnvSection:
        """Return the env's section, or create one (heading, Docs, Settings, empty table) at the
        end of ``phase`` (a ``Phase N: Title`` heading or just its title; created if missing)."""
        existing = self.find_env(env_id)
        if existing is not None:
            self._check_section_settings(existing, settings_line)
            return existing
        if not env_id or any(ch.isspace() or ch == "|" for ch in env_id):
            raise BenchError(
                f"{self.source}: env id {env_id!r} is not usable in a heading "
                "(expected a non-empty id without spaces or '|')"
            )
        number, end = self._next_section_number(env_id, phase)
        block = ["", f"#### {number} {env_id}"]
        for line, prefix in ((docs_line, DOCS_PREFIX), (settings_line, SETTINGS_PREFIX)):
            if line:
                _check_single_line(self.source, prefix, line)
                block += ["", line if line.startswith(prefix) else f"{prefix} {line}"]
        block += ["", RESULT_HEADER, RESULT_SEPARATOR]
        at = self._append_point(end)
        if at < self.line_count and self.line(at).strip():
            block.append("")
        self.insert_lines(at, block)
        section = self.find_env(env_id)
        assert section is not None
        return section

    def _next_section_number(self, env_id: str, phase: str | None) -> tuple[str, int]:
        """A new env section's number in ``phase`` (``## Results``, then the phase, created if
        missing) and the line where that part of the file ends."""
        if self.results_span() is None:
            at = self._append_point(self.line_count)
            self.insert_lines(at, ["", "## Results"] if at else ["## Results"])
        results = self.results_span()
        assert results is not None
        region = None
        if phase is not None:
            region = self._find_phase(phase) or self._create_phase(phase)
            number_prefix = _phase_number(region.title)
            end = region.end
        elif self.phases():
            raise BenchError(
                f"{self.source}: env {env_id!r} needs a phase (expected one of "
                f"{', '.join(self.phases())} or a new phase title)"
            )
        else:
            number_prefix = None
            end = results[1]
        siblings = [
            s
            for s in self.env_sections()
            if s.form == FORM_SECTION and s.phase == (region.title if region else None)
        ]
        last = max((_last_number(s.number) for s in siblings), default=0)
        return (f"{number_prefix}.{last + 1}" if number_prefix else str(last + 1)), end

    def _check_section_settings(self, section: EnvSection, settings_line: str | None) -> None:
        """An existing section keeps its Settings line: rows run under other Settings (a config
        whose ``envs`` differ from the checkout's file) are refused with one line, never landed
        silently under the file's line."""
        if not settings_line or section.settings_line is None:
            return
        where = f"{self.source}: {section.env_id}"
        ours = parse_settings_line(settings_line, where)
        theirs = parse_settings_line(section.settings_line, where)
        if ours != theirs:
            raise BenchError(
                f"{where}: the rows were run with Settings '{ours.line()}' but the table's "
                f"Settings line says '{theirs.line()}' (expected the same Settings; run with the "
                "file's Settings, or edit its Settings line by hand first)"
            )

    def _append_point(self, end: int) -> int:
        """Where to append content to a region ending at ``end``: after its last content line,
        before trailing blank lines and a closing ``---`` rule."""
        at = end
        while at > 0 and not self.line(at - 1).strip():
            at -= 1
        if at > 1 and _THEMATIC_BREAK.match(self.line(at - 1)) and not self.line(at - 2).strip():
            at -= 1
            while at > 0 and not self.line(at - 1).strip():
                at -= 1
        return at

    def _find_phase(self, phase: str) -> Region | None:
        for region in self.regions():
            if region.level != 3:
                continue
            title = region.title
            if title == phase or re.sub(r"^Phase\s+\d+(?:\.\d+)*:\s*", "", title) == phase:
                return region
        return None

    def _create_phase(self, phase: str) -> Region:
        _check_single_line(self.source, "phase", phase)
        title = phase
        if not _PHASE_NUMBER.match(phase):
            numbers = [_phase_number(p) for p in self.phases()]
            title = f"Phase {max((int(n) for n in numbers if n), default=0) + 1}: {phase}"
        results = self.results_span()
        assert results is not None
        at = self._append_point(results[1])
        block = ["", f"### {title}"]
        if at < self.line_count and self.line(at).strip():
            block.append("")
        self.insert_lines(at, block)
        region = self._find_phase(title)
        assert region is not None
        return region

    # ------------------------------------------------------------------------ plots, links

    def ensure_plot_embed(self, env_id: str, png_name: str, plots_dir: str = "plots") -> None:
        """Add ``![env_id](plots/png_name)`` after the env's table unless it has a plot already.

        ``plots_dir`` is the plots folder relative to the document (``plots`` beside it).

        For a shared-table group the image goes into the image grid that follows the table (first
        free cell of its last row, or a new row)."""
        section = self._require_env(env_id)
        _check_single_line(self.source, "png_name", png_name)
        if section.plot_embed is not None:
            return
        if section.form == FORM_GROUP and self._fill_grid(section, png_name):
            return
        # A group without an image grid gets a plain embed line after its shared table.
        after = section.table.end if section.table else self._append_point(section.end)
        block = ["", f"![{env_id}]({plots_dir}/{png_name})"]
        if after < self.line_count and self.line(after).strip():
            block.append("")
        self.insert_lines(after, block)

    def _fill_grid(self, section: EnvSection, png_name: str) -> bool:
        assert section.table is not None
        grid = self.image_grid(section.table)
        if grid is None:
            return False
        alt = re.sub(r"-v\d+$", "", env_base(section.env_id))
        image = f"![{alt}](plots/{png_name})"
        columns = len(grid.header)
        last = grid.end - 1
        cells = split_cells(self.line(last)) if last >= grid.start + 2 else []
        if cells and "" in cells:
            cells[cells.index("")] = image
            self.replace_line(last, render_cells(cells))
        else:
            self.insert_lines(grid.end, [render_cells([image] + [""] * (columns - 1))])
        return True

    def rewrite_links(self, old_repo: str, new_repo: str) -> int:
        """Point result rows' HF Data links at ``new_repo``; returns how many were rewritten."""
        for name, repo in (("old_repo", old_repo), ("new_repo", new_repo)):
            if not _REPO.match(repo):
                raise BenchError(
                    f"{self.source}: rewrite_links {name} {repo!r} is not a repo id "
                    "(expected owner/name)"
                )
        pattern = re.compile(
            r"(\]\(https?://[^/\s)]+/datasets/)" + re.escape(old_repo) + r"(/tree/main/data/)"
        )
        count = 0
        rewritten: dict[int, str] = {}
        for table in self.tables():
            if table.kind not in (TABLE_RESULT, TABLE_GROUPED):
                continue
            for i in table.row_indexes:
                line = self.line(i)
                # Only the last cell (HF Data) is rewritten; the rest of the line keeps its bytes.
                stripped = line.rstrip()
                close = len(stripped) - 1 if stripped.endswith("|") else len(stripped)
                open_ = line.rfind("|", 0, close)
                if open_ < 0:
                    continue
                new_cell, n = pattern.subn(rf"\g<1>{new_repo}\g<2>", line[open_:close])
                if n:
                    rewritten[i] = line[:open_] + new_cell + line[close:]
                    count += n
        self.replace_lines(rewritten)
        return count


def new_document(title: str = "SLM-Lab Benchmarks") -> BenchmarksDoc:
    """A minimal BENCHMARKS.md (title and ``## Results``) for ``ensure_env`` and friends to fill."""
    _check_single_line("BENCHMARKS.md", "title", title)
    return BenchmarksDoc.parse(f"# {title}\n\n## Results\n")


def _matching_row(section: EnvSection, row: ResultRow) -> int | None:
    same = [k for k, r in enumerate(section.rows) if r.algorithm == row.algorithm]
    if len(same) == 1:
        return same[0]
    return next((k for k in same if section.rows[k].spec_name == row.spec_name), None)


def _phase_number(title: str) -> str | None:
    match = _PHASE_NUMBER.match(title)
    return match.group(1) if match else None


def _last_number(number: str | None) -> int:
    if not number:
        return 0
    tail = number.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _check_single_line(source: str, name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise BenchError(f"{source}: {name} must be a single line, got {value!r}")
