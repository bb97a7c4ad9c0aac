"""SLM-Lab's docs/BENCHMARKS.md as a list of lines plus indexes of its structures.

Parsing never rewrites a line: the document keeps every line's text and line ending, and edits
(``slm_bench.table_edit``) replace or insert whole lines, so everything an edit does not touch
stays byte-identical. After each edit the indexes are rebuilt from the lines, so any
``EnvSection`` or ``Table`` taken before an edit is a stale snapshot.

Two forms of result tables exist, each in every column layout the file has used
(``slm_bench.table_rows``; see the SLM-Lab formats reference, section 4):

- per-env sections: ``#### 1.1 CartPole-v1`` heading, ``**Docs**:`` and ``**Settings**:`` lines,
  a ``| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |`` table (older files: last
  column ``HF Repo``), then a plot embed;
- shared tables (Atari, Playground): ``| ENV | MA | SPEC_NAME | HF Data |`` (older files:
  ``| ENV | Score | SPEC_NAME | HF Repo |``, or one row per game) where the ENV cell is set only
  on the first row of each env's group, Docs/Settings come from the phase (or sub-phase)
  preamble and plots sit in an image grid table.

Both forms are exposed as ``EnvSection`` objects (``form`` says which). A table that looks like
results but is in no known layout, or result rows the index cannot attribute to an env, are
reported by ``warnings()`` with their line number, never skipped silently.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.errors import BenchError
from slm_bench.naming import algorithm_from_spec_name, env_base
from slm_bench.settings import Legend, parse_legend
from slm_bench.table_edit import DocEdits, _check_single_line
from slm_bench.table_model import EnvSection, Region, Table, target_of
from slm_bench.table_rows import (  # noqa: F401 - re-exported: the table's public names
    FORM_GROUP,
    FORM_SECTION,
    GROUPED_COLUMNS,
    LAYOUT_GROUP,
    LAYOUT_SECTION,
    RESULT_COLUMNS,
    RESULT_HEADER,
    RESULT_SEPARATOR,
    TABLE_GROUPED,
    TABLE_IMAGE_GRID,
    TABLE_OTHER,
    TABLE_RESULT,
    ResultRow,
    is_separator,
    layout_of,
    looks_like_results,
    parse_hf_cell,
    split_cells,
    strip_dotdot,
)

# Status cells of the legend beyond the three the status rule computes (settings.STATUS_*).
STATUS_ACCEPTABLE = "📊"
STATUS_PENDING = "🔄"

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*$")
_ENV_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?[ \t]+(\S+)$")
_PLOT_EMBED = re.compile(r"^!\[[^\]]*\]\((?:[^)\s]*/)?plots/[^)]+\)[ \t]*$")
_GRID_IMAGE = re.compile(r"!\[[^\]]*\]\(plots/([^)]+)\)")
_PHASE_SPEC_BULLET = re.compile(r"^\s*[-*]\s+\*\*([^*]+)\*\*:\s*\[[^\]]*\]\(([^)\s]+)\)")
_PHASE_SPEC_FILE = re.compile(r"^\*\*Spec files?\*\*:\s*\[[^\]]*\]\(([^)\s]+)\)", re.IGNORECASE)
_LEGEND_PREFIX = "**Legend**:"
_DOCS_PREFIX = "**Docs**:"
_SETTINGS_PREFIX = "**Settings**:"


class BenchmarksDoc(DocEdits):
    """SLM-Lab's BENCHMARKS.md: exact lines plus indexes; edits touch only the lines they must."""

    def __init__(self, text: str, source: str = "BENCHMARKS.md"):
        self.source = source
        self._bom = "\ufeff" if text.startswith("\ufeff") else ""
        text = text[len(self._bom) :]
        self._lines: list[str] = []
        self._ends: list[str] = []
        pos = 0
        while pos < len(text):
            newline = text.find("\n", pos)
            if newline < 0:
                self._lines.append(text[pos:])
                self._ends.append("")
                break
            line = text[pos:newline]
            if line.endswith("\r"):
                self._lines.append(line[:-1])
                self._ends.append("\r\n")
            else:
                self._lines.append(line)
                self._ends.append("\n")
            pos = newline + 1
        crlf = sum(end == "\r\n" for end in self._ends)
        self._newline = "\r\n" if crlf * 2 > len(self._ends) else "\n"
        self._reindex()

    # ----------------------------------------------------------------- reading and writing

    @classmethod
    def parse(cls, text: str, source: str = "BENCHMARKS.md") -> BenchmarksDoc:
        return cls(text, source)

    @classmethod
    def read(cls, path: str | os.PathLike) -> BenchmarksDoc:
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

    # --------------------------------------------------------------------------- indexing

    def _reindex(self) -> None:
        lines = self._lines
        fenced = self._fence_mask()
        self._fenced = fenced
        self._tables = self._find_tables(fenced)
        headings = [
            (i, len(m.group(1)), m.group(2))
            for i, line in enumerate(lines)
            if not fenced[i] and (m := _HEADING.match(line))
        ]
        self._results: tuple[int, int] | None = None
        self._regions: list[Region] = []
        self._sections: list[EnvSection] = []
        self._grids: dict[int, Table | None] = {}  # shared table start -> its image grid
        start = next(
            (k for k, (_, level, text) in enumerate(headings) if level == 2 and text == "Results"),
            None,
        )
        if start is None:
            return
        results_end = next((i for i, level, _ in headings[start + 1 :] if level <= 2), len(lines))
        self._results = (headings[start][0], results_end)
        inner = [h for h in headings[start + 1 :] if h[0] < results_end]

        def next_heading(k: int, max_level: int) -> int:
            return next((i for i, level, _ in inner[k + 1 :] if level <= max_level), results_end)

        phase: Region | None = None
        subphase: Region | None = None
        sections: list[tuple[int, int, str, str, Region | None, Region | None]] = []
        for k, (i, level, text) in enumerate(inner):
            if level == 3:
                phase = self._region(text, 3, i, next_heading(k, 3), next_heading(k, 4))
                subphase = None
                self._regions.append(phase)
            elif level == 4:
                if subphase is not None and i >= subphase.end:
                    subphase = None
                if match := _ENV_HEADING.match(text):
                    end = next_heading(k, 4)
                    sections.append((i, end, match.group(1), match.group(2), phase, subphase))
                else:
                    subphase = self._region(text, 4, i, next_heading(k, 4), next_heading(k, 4))
                    self._regions.append(subphase)
        for i, end, number, env_id, phase, subphase in sections:
            self._sections.append(self._env_section(i, end, number, env_id, phase, subphase))
        for table in self._tables:
            if table.kind == TABLE_GROUPED and self._results[0] < table.start < results_end:
                self._sections.extend(self._group_sections(table))
        self._sections.sort(key=lambda section: section.start)

    def _fence_mask(self) -> list[bool]:
        mask = []
        fence: str | None = None
        for line in self._lines:
            stripped = line.lstrip()
            if fence is None:
                match = re.match(r"^(`{3,}|~{3,})", stripped)
                if match:
                    fence = match.group(1)
                mask.append(fence is not None)
            else:
                mask.append(True)
                if stripped.startswith(fence) and not stripped.strip(fence[0]).strip():
                    fence = None
        return mask

    def _find_tables(self, fenced: list[bool]) -> list[Table]:
        lines = self._lines

        def is_table_line(i: int) -> bool:
            return i < len(lines) and not fenced[i] and lines[i].lstrip().startswith("|")

        tables = []
        i = 0
        while i < len(lines):
            if is_table_line(i) and is_table_line(i + 1) and is_separator(lines[i + 1]):
                end = i + 2
                while is_table_line(end):
                    end += 1
                header = tuple(split_cells(lines[i]))
                layout = layout_of(header)
                if layout == LAYOUT_SECTION:
                    kind = TABLE_RESULT
                elif layout == LAYOUT_GROUP:
                    kind = TABLE_GROUPED
                elif not any(header):
                    kind = TABLE_IMAGE_GRID
                else:
                    kind = TABLE_OTHER
                tables.append(Table(i, end, header, kind, "\n".join(lines[i:end])))
                i = end
            else:
                i += 1
        return tables

    def _region(self, title: str, level: int, heading: int, end: int, preamble_end: int) -> Region:
        region = Region(title, level, heading, end, preamble_end)
        for i in range(heading + 1, preamble_end):
            line = self._lines[i]
            if self._fenced[i]:
                continue
            if region.docs_line is None and line.startswith(_DOCS_PREFIX):
                region.docs_line = line
            elif region.settings_line is None and line.startswith(_SETTINGS_PREFIX):
                region.settings_line = line
            elif match := _PHASE_SPEC_BULLET.match(line):
                region.spec_links.setdefault(match.group(1).strip(), match.group(2))
            elif match := _PHASE_SPEC_FILE.match(line):
                region.spec_links.setdefault("*", match.group(1))
        return region

    @staticmethod
    def _inherit(attr: str, *regions: Region | None) -> str | None:
        for region in regions:
            if region is not None and getattr(region, attr) is not None:
                return getattr(region, attr)
        return None

    def _env_section(
        self,
        heading: int,
        end: int,
        number: str,
        env_id: str,
        phase: Region | None,
        subphase: Region | None,
    ) -> EnvSection:
        docs = settings = None
        for i in range(heading + 1, end):
            if self._fenced[i]:
                continue
            line = self._lines[i]
            if docs is None and line.startswith(_DOCS_PREFIX):
                docs = line
            elif settings is None and line.startswith(_SETTINGS_PREFIX):
                settings = line
        table = next(
            (t for t in self._tables if t.kind == TABLE_RESULT and heading < t.start < end), None
        )
        rows, row_lines = [], []
        if table is not None:
            for i in table.row_indexes:
                rows.append(
                    replace(
                        ResultRow.from_cells(table.header, split_cells(self._lines[i])),
                        env=env_id,
                    )
                )
                row_lines.append(i)
        plot = next(
            (
                self._lines[i]
                for i in range(table.end if table else heading + 1, end)
                if not self._fenced[i] and _PLOT_EMBED.match(self._lines[i])
            ),
            None,
        )
        docs_inherited = docs is None and self._inherit("docs_line", subphase, phase) is not None
        settings_inherited = (
            settings is None and self._inherit("settings_line", subphase, phase) is not None
        )
        docs = docs or self._inherit("docs_line", subphase, phase)
        settings = settings or self._inherit("settings_line", subphase, phase)
        return EnvSection(
            env_id=env_id,
            form=FORM_SECTION,
            phase=phase.title if phase else None,
            subphase=subphase.title if subphase else None,
            number=number,
            docs_line=docs,
            docs_inherited=docs_inherited,
            settings_line=settings,
            settings_inherited=settings_inherited,
            target=target_of(docs),
            rows=rows,
            plot_embed=plot,
            start=heading,
            end=end,
            table=table,
            row_lines=row_lines,
        )

    def _enclosing(self, index: int) -> tuple[Region | None, Region | None]:
        phase = subphase = None
        for region in self._regions:
            if region.heading < index < region.end:
                if region.level == 3:
                    phase = region
                else:
                    subphase = region
        return phase, subphase

    def _group_sections(self, table: Table) -> list[EnvSection]:
        phase, subphase = self._enclosing(table.start)
        docs = self._inherit("docs_line", subphase, phase)
        settings = self._inherit("settings_line", subphase, phase)
        # Plots of a shared table sit in the next image grid before the next heading.
        limit = subphase.preamble_end if subphase else phase.preamble_end if phase else table.end
        grid = next(
            (
                t
                for t in self._tables
                if t.kind == TABLE_IMAGE_GRID and table.end <= t.start < limit
            ),
            None,
        )
        self._grids[table.start] = grid
        grid_images = self._grid_images(grid)
        groups: list[tuple[str, list[int]]] = []
        for i in table.row_indexes:
            env = split_cells(self._lines[i])[0]
            if env or not groups:
                groups.append((env, []))
            groups[-1][1].append(i)
        sections = []
        for env_id, row_lines in groups:
            rows = [self._group_row(table, i, env_id, subphase, phase) for i in row_lines]
            sections.append(
                EnvSection(
                    env_id=env_id,
                    form=FORM_GROUP,
                    phase=phase.title if phase else None,
                    subphase=subphase.title if subphase else None,
                    number=None,
                    docs_line=docs,
                    docs_inherited=docs is not None,
                    settings_line=settings,
                    settings_inherited=settings is not None,
                    target=target_of(docs),
                    rows=rows,
                    plot_embed=self._grid_cell(grid_images, env_id),
                    start=row_lines[0],
                    end=row_lines[-1] + 1,
                    table=table,
                    row_lines=row_lines,
                )
            )
        return sections

    def _group_row(
        self, table: Table, index: int, env_id: str, subphase: Region | None, phase: Region | None
    ) -> ResultRow:
        row = ResultRow.from_cells(table.header, split_cells(self._lines[index]))
        algorithm = algorithm_from_spec_name(row.spec_name)
        link = None
        for region in (subphase, phase):
            if region is not None:
                link = region.spec_links.get(algorithm) or region.spec_links.get("*")
                if link:
                    break
        return replace(
            row,
            algorithm=algorithm,
            spec_file=strip_dotdot(link) if link else "",
            spec_link=link,
            env=env_id,
        )

    def _grid_images(self, grid: Table | None) -> list[tuple[str, str]]:
        """(plot file name, cell text) of every image in an image grid."""
        if grid is None:
            return []
        images = []
        for i in grid.row_indexes:
            for cell in split_cells(self._lines[i]):
                if match := _GRID_IMAGE.search(cell):
                    images.append((match.group(1), cell))
        return images

    @staticmethod
    def _grid_cell(images: list[tuple[str, str]], env_id: str) -> str | None:
        prefix = env_base(env_id) + "_"
        return next((cell for name, cell in images if env_id and name.startswith(prefix)), None)

    # ---------------------------------------------------------------------------- queries

    def tables(self) -> list[Table]:
        """Every markdown table (result, shared result, image grid and other tables)."""
        return list(self._tables)

    def env_sections(self) -> list[EnvSection]:
        """Every env with results, in document order: heading sections and shared-table groups."""
        return list(self._sections)

    def find_env(self, env_id: str) -> EnvSection | None:
        """The env's first section (an env split over several shared tables has one per table)."""
        return next((s for s in self._sections if s.env_id == env_id), None)

    def result_rows(self) -> list[ResultRow]:
        """All rows of all result tables (both forms), env filled in, in document order."""
        rows: list[ResultRow] = []
        by_line: dict[int, ResultRow] = {}
        for section in self._sections:
            for i, row in zip(section.row_lines, section.rows, strict=True):
                by_line[i] = row
        for table in self._tables:
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
        return [region.title for region in self._regions if region.level == 3]

    def is_fenced(self, index: int) -> bool:
        """Whether line ``index`` (0-based) is inside a code fence (not markdown structure)."""
        return self._fenced[index]

    def phase_at(self, index: int) -> str | None:
        """Title of the ``###`` phase under ``## Results`` that line ``index`` belongs to."""
        phase, _ = self._enclosing(index)
        return phase.title if phase else None

    def legend(self) -> Legend:
        """The status symbols of the file's ``**Legend**:`` line (SLM-Lab's when it has none)."""
        for i, line in enumerate(self._lines):
            if not self._fenced[i] and line.startswith(_LEGEND_PREFIX):
                legend = parse_legend(line)
                if legend is not None:
                    return legend
        return Legend()

    def warnings(self) -> list[str]:
        """One line per table that looks like results but whose rows are not read, naming its
        line number: a header in no known layout, or result rows outside any env."""
        attributed = {i for s in self._sections if s.env_id for i in s.row_lines}
        found = []
        for table in self._tables:
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


def new_document(title: str = "SLM-Lab Benchmarks") -> BenchmarksDoc:
    """A minimal BENCHMARKS.md (title and ``## Results``) for ``ensure_env`` and friends to fill."""
    _check_single_line("BENCHMARKS.md", "title", title)
    return BenchmarksDoc.parse(f"# {title}\n\n## Results\n")
