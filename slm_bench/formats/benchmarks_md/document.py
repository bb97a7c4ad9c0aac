"""SLM-Lab's docs/BENCHMARKS.md as exact lines plus the index of its structures.

A ``Document`` keeps every line's text and line ending (and a byte-order mark), so rendering an
unedited document gives back its bytes. Its line edits (``replace_line``, ``replace_lines``,
``insert_lines``) replace or insert whole lines and rebuild the index
(``slm_bench.formats.benchmarks_md.parse``), so everything an edit does not touch stays
byte-identical and any ``EnvSection`` or ``Table`` taken before an edit is a stale snapshot. The
edits of the file's structures (rows, env sections, plots, links) build on these
(``slm_bench.formats.benchmarks_md.edit``).

A table that looks like results but is in no known layout, or result rows the index cannot
attribute to an env, are reported by ``warnings()`` with their line number, never skipped
silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from slm_bench.atomic import write_text
from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md.model import (
    TABLE_GROUPED,
    TABLE_OTHER,
    TABLE_RESULT,
    EnvSection,
    Region,
    Table,
)
from slm_bench.formats.benchmarks_md.parse import index_lines, split_lines
from slm_bench.formats.benchmarks_md.rows import (
    RESULT_HEADER,
    ResultRow,
    looks_like_results,
    split_cells,
)
from slm_bench.formats.status_rule import Legend, parse_legend

_LEGEND_PREFIX = "**Legend**:"


class Document:
    """SLM-Lab's BENCHMARKS.md: exact lines plus their index; edits touch only the lines they
    name."""

    def __init__(self, text: str, source: str = "BENCHMARKS.md"):
        self.source = source
        self._bom = "\ufeff" if text.startswith("\ufeff") else ""
        self._lines, self._ends = split_lines(text[len(self._bom) :])
        crlf = sum(end == "\r\n" for end in self._ends)
        self._newline = "\r\n" if crlf * 2 > len(self._ends) else "\n"
        self._index = index_lines(self._lines)

    # ----------------------------------------------------------------- reading and writing

    @classmethod
    def parse(cls, text: str, source: str = "BENCHMARKS.md") -> Self:
        return cls(text, source)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Self:
        """Parse a file, keeping its line endings (no newline translation)."""
        path = Path(path)
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                text = handle.read()
        except FileNotFoundError as error:
            raise BenchError(f"{path}: file not found (expected a BENCHMARKS.md)") from error
        except UnicodeDecodeError as error:
            raise BenchError(f"{path}: not UTF-8 text (expected a BENCHMARKS.md)") from error
        return cls(text, str(path))

    def write(self, path: str | os.PathLike) -> Path:
        """Write the document atomically."""
        return write_text(path, self.render())

    def render(self) -> str:
        return self._bom + "".join(
            line + end for line, end in zip(self._lines, self._ends, strict=True)
        )

    @property
    def lines(self) -> tuple[str, ...]:
        """Line texts without their line endings."""
        return tuple(self._lines)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def line(self, index: int) -> str:
        """Line ``index`` (0-based) without its line ending."""
        return self._lines[index]

    # -------------------------------------------------------------------------- line edits

    def replace_line(self, index: int, text: str) -> None:
        """Replace line ``index`` (its ending stays)."""
        self.replace_lines({index: text})

    def replace_lines(self, texts: dict[int, str]) -> None:
        """Replace several lines (index -> new text) at once (their endings stay)."""
        changed = False
        for index, text in texts.items():
            if self._lines[index] != text:
                self._lines[index] = text
                changed = True
        if changed:
            self._index = index_lines(self._lines)

    def insert_lines(self, at: int, texts: list[str]) -> None:
        """Insert lines before line ``at`` (``line_count``: at the end), with the file's line
        ending; a file without a trailing newline keeps none."""
        if not texts:
            return
        ends = [self._newline] * len(texts)
        if at == len(self._lines) and self._lines and self._ends[-1] == "":
            # Keep a file without a trailing newline that way: the new last line has none.
            self._ends[-1] = self._newline
            ends[-1] = ""
        self._lines[at:at] = texts
        self._ends[at:at] = ends
        self._index = index_lines(self._lines)

    # ---------------------------------------------------------------------------- structure

    def results_span(self) -> tuple[int, int] | None:
        """The ``## Results`` heading's line and the exclusive end of its part, or None."""
        return self._index.results

    def regions(self) -> list[Region]:
        """The phases (``###``) and sub-phases (non-env ``####``) of ``## Results``."""
        return list(self._index.regions)

    def image_grid(self, table: Table) -> Table | None:
        """The image grid holding a shared result table's plots, or None."""
        return self._index.grids.get(table.start)

    # ------------------------------------------------------------------------------ queries

    def tables(self) -> list[Table]:
        """Every markdown table (result, shared result, image grid and other tables)."""
        return list(self._index.tables)

    def env_sections(self) -> list[EnvSection]:
        """Every env with results, in document order: heading sections and shared-table groups."""
        return list(self._index.sections)

    def find_env(self, env_id: str) -> EnvSection | None:
        """The env's first section (an env split over several shared tables has one per table)."""
        return next((s for s in self._index.sections if s.env_id == env_id), None)

    def result_rows(self) -> list[ResultRow]:
        """All rows of all result tables (both forms), env filled in, in document order."""
        rows: list[ResultRow] = []
        by_line: dict[int, ResultRow] = {}
        for section in self._index.sections:
            for i, row in zip(section.row_lines, section.rows, strict=True):
                by_line[i] = row
        for table in self._index.tables:
            if table.kind not in (TABLE_RESULT, TABLE_GROUPED):
                continue
            for i in table.row_indexes:
                if i in by_line:
                    rows.append(by_line[i])
                elif table.kind == TABLE_RESULT:  # a result table outside any env section
                    rows.append(ResultRow.from_cells(table.header, split_cells(self._lines[i])))
        return rows

    def phases(self) -> list[str]:
        """Titles of the ``###`` phases under ``## Results``."""
        return [region.title for region in self._index.regions if region.level == 3]

    def is_fenced(self, index: int) -> bool:
        """Whether line ``index`` (0-based) is inside a code fence (not markdown structure)."""
        return self._index.fenced[index]

    def phase_at(self, index: int) -> str | None:
        """Title of the ``###`` phase under ``## Results`` that line ``index`` belongs to."""
        phase, _ = self._index.enclosing(index)
        return phase.title if phase else None

    def legend(self) -> Legend:
        """The status symbols of the file's ``**Legend**:`` line (SLM-Lab's when it has none)."""
        for i, line in enumerate(self._lines):
            if not self._index.fenced[i] and line.startswith(_LEGEND_PREFIX):
                legend = parse_legend(line)
                if legend is not None:
                    return legend
        return Legend()

    def warnings(self) -> list[str]:
        """One line per table that looks like results but whose rows are not read, naming its
        line number: a header in no known layout, or result rows outside any env."""
        attributed = {i for s in self._index.sections if s.env_id for i in s.row_lines}
        found = []
        for table in self._index.tables:
            where = f"{self.source} line {table.start + 1}"
            header = "| " + " | ".join(table.header) + " |"
            rows = [self._lines[i] for i in table.row_indexes]
            if table.kind in (TABLE_RESULT, TABLE_GROUPED):
                lost = [i for i in table.row_indexes if i not in attributed]
                if lost:
                    found.append(
                        f"{where}: result table {header} has {len(lost)} row(s) not under an "
                        "env heading or ENV cell inside '## Results' (expected a "
                        "'#### N.M ENV' section or an ENV on the group's first row); "
                        "they are not read"
                    )
            elif table.kind == TABLE_OTHER and looks_like_results(table.header, rows):
                found.append(
                    f"{where}: table {header} looks like results but is not a known layout "
                    f"(expected {RESULT_HEADER} or | ENV | MA | SPEC_NAME | HF Data |); "
                    f"its {len(rows)} row(s) are not read"
                )
        return found
