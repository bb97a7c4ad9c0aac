"""Parsing BENCHMARKS.md: its text as exact lines, and the index of the structures in them.

Parsing never rewrites a line: ``split_lines`` keeps every line's text and line ending, and
``index_lines`` reads the lines into records (``slm_bench.formats.benchmarks_md.model``) without
changing them. Two forms of result tables exist, each in every column layout the file has used
(``slm_bench.formats.benchmarks_md.rows``; see the SLM-Lab formats reference, section 4):

- per-env sections: ``#### 1.1 CartPole-v1`` heading, ``**Docs**:`` and ``**Settings**:`` lines,
  a ``| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |`` table (older files: last
  column ``HF Repo``), then a plot embed;
- shared tables (Atari, Playground): ``| ENV | MA | SPEC_NAME | HF Data |`` (older files:
  ``| ENV | Score | SPEC_NAME | HF Repo |``, or one row per game) where the ENV cell is set only
  on the first row of each env's group, Docs/Settings come from the phase (or sub-phase)
  preamble and plots sit in an image grid table.

Both forms are indexed as ``EnvSection`` records (``form`` says which).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from slm_bench.formats.benchmarks_md.model import (
    FORM_GROUP,
    FORM_SECTION,
    TABLE_GROUPED,
    TABLE_IMAGE_GRID,
    TABLE_OTHER,
    TABLE_RESULT,
    EnvSection,
    Region,
    Table,
    target_of,
)
from slm_bench.formats.benchmarks_md.rows import (
    LAYOUT_GROUP,
    LAYOUT_SECTION,
    ResultRow,
    is_separator,
    layout_of,
    split_cells,
    strip_dotdot,
)
from slm_bench.formats.naming import algorithm_from_spec_name, env_base

DOCS_PREFIX = "**Docs**:"
SETTINGS_PREFIX = "**Settings**:"

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*$")
_ENV_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?[ \t]+(\S+)$")
_PLOT_EMBED = re.compile(r"^!\[[^\]]*\]\((?:[^)\s]*/)?plots/[^)]+\)[ \t]*$")
_GRID_IMAGE = re.compile(r"!\[[^\]]*\]\(plots/([^)]+)\)")
_PHASE_SPEC_BULLET = re.compile(r"^\s*[-*]\s+\*\*([^*]+)\*\*:\s*\[[^\]]*\]\(([^)\s]+)\)")
_PHASE_SPEC_FILE = re.compile(r"^\*\*Spec files?\*\*:\s*\[[^\]]*\]\(([^)\s]+)\)", re.IGNORECASE)


def split_lines(text: str) -> tuple[list[str], list[str]]:
    """The text's lines without their endings, and each line's ending (``\\n``, ``\\r\\n``, or
    ``""`` for a last line without one)."""
    lines: list[str] = []
    ends: list[str] = []
    pos = 0
    while pos < len(text):
        newline = text.find("\n", pos)
        if newline < 0:
            lines.append(text[pos:])
            ends.append("")
            break
        line = text[pos:newline]
        if line.endswith("\r"):
            lines.append(line[:-1])
            ends.append("\r\n")
        else:
            lines.append(line)
            ends.append("\n")
        pos = newline + 1
    return lines, ends


@dataclass(frozen=True)
class Index:
    """Where the document's structures are: code fences, tables, the ``## Results`` span (header
    line, exclusive end), its phase regions, env sections (document order) and the image grid
    after each shared table (by the table's start line)."""

    fenced: list[bool]
    tables: list[Table]
    results: tuple[int, int] | None
    regions: list[Region]
    sections: list[EnvSection]
    grids: dict[int, Table | None]

    def enclosing(self, index: int) -> tuple[Region | None, Region | None]:
        """The phase and sub-phase that line ``index`` lies in."""
        return _enclosing(self.regions, index)


def index_lines(lines: Sequence[str]) -> Index:
    """Index the structures of a document's lines."""
    fenced = _fence_mask(lines)
    return _Indexer(lines, fenced, _find_tables(lines, fenced)).index()


def _fence_mask(lines: Sequence[str]) -> list[bool]:
    mask = []
    fence: str | None = None
    for line in lines:
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


def _find_tables(lines: Sequence[str], fenced: list[bool]) -> list[Table]:
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
            tables.append(Table(i, end, header, _table_kind(header), "\n".join(lines[i:end])))
            i = end
        else:
            i += 1
    return tables


def _table_kind(header: tuple[str, ...]) -> str:
    layout = layout_of(header)
    if layout == LAYOUT_SECTION:
        return TABLE_RESULT
    if layout == LAYOUT_GROUP:
        return TABLE_GROUPED
    if not any(header):
        return TABLE_IMAGE_GRID
    return TABLE_OTHER


def _enclosing(regions: list[Region], index: int) -> tuple[Region | None, Region | None]:
    phase = subphase = None
    for region in regions:
        if region.heading < index < region.end:
            if region.level == 3:
                phase = region
            else:
                subphase = region
    return phase, subphase


def _inherit(attr: str, *regions: Region | None) -> str | None:
    for region in regions:
        if region is not None and getattr(region, attr) is not None:
            return getattr(region, attr)
    return None


class _EnvHeading(NamedTuple):
    """A ``#### N.M ENV`` heading under ``## Results``: its line, the section's exclusive end,
    its number and env id, and the phase and sub-phase it is in."""

    heading: int
    end: int
    number: str
    env_id: str
    phase: Region | None
    subphase: Region | None


class _Indexer:
    """One pass over a document's lines: regions first, then the env sections they hold."""

    def __init__(self, lines: Sequence[str], fenced: list[bool], tables: list[Table]):
        self.lines = lines
        self.fenced = fenced
        self.tables = tables
        self.regions: list[Region] = []
        self.grids: dict[int, Table | None] = {}

    def index(self) -> Index:
        headings = [
            (i, len(m.group(1)), m.group(2))
            for i, line in enumerate(self.lines)
            if not self.fenced[i] and (m := _HEADING.match(line))
        ]
        start = next((i for i, level, text in headings if level == 2 and text == "Results"), None)
        if start is None:
            return Index(self.fenced, self.tables, None, [], [], {})
        end = next((i for i, level, _ in headings if i > start and level <= 2), len(self.lines))
        inner = [h for h in headings if start < h[0] < end]
        sections = [self._env_section(h) for h in self._walk(inner, end)]
        for table in self.tables:
            if table.kind == TABLE_GROUPED and start < table.start < end:
                sections.extend(self._group_sections(table))
        sections.sort(key=lambda section: section.start)
        return Index(self.fenced, self.tables, (start, end), self.regions, sections, self.grids)

    def _walk(self, inner: list[tuple[int, int, str]], results_end: int) -> list[_EnvHeading]:
        """Record the phases and sub-phases of ``## Results``; return its env headings."""

        def next_heading(k: int, max_level: int) -> int:
            return next((i for i, level, _ in inner[k + 1 :] if level <= max_level), results_end)

        phase: Region | None = None
        subphase: Region | None = None
        found = []
        for k, (i, level, text) in enumerate(inner):
            if level == 3:
                phase = self._region(text, 3, i, next_heading(k, 3), next_heading(k, 4))
                subphase = None
                self.regions.append(phase)
            elif level == 4:
                if subphase is not None and i >= subphase.end:
                    subphase = None
                if match := _ENV_HEADING.match(text):
                    end = next_heading(k, 4)
                    found.append(
                        _EnvHeading(i, end, match.group(1), match.group(2), phase, subphase)
                    )
                else:
                    subphase = self._region(text, 4, i, next_heading(k, 4), next_heading(k, 4))
                    self.regions.append(subphase)
        return found

    def _region(self, title: str, level: int, heading: int, end: int, preamble_end: int) -> Region:
        region = Region(title, level, heading, end, preamble_end)
        for i in range(heading + 1, preamble_end):
            line = self.lines[i]
            if self.fenced[i]:
                continue
            if region.docs_line is None and line.startswith(DOCS_PREFIX):
                region.docs_line = line
            elif region.settings_line is None and line.startswith(SETTINGS_PREFIX):
                region.settings_line = line
            elif match := _PHASE_SPEC_BULLET.match(line):
                region.spec_links.setdefault(match.group(1).strip(), match.group(2))
            elif match := _PHASE_SPEC_FILE.match(line):
                region.spec_links.setdefault("*", match.group(1))
        return region

    def _own_lines(self, start: int, end: int) -> tuple[str | None, str | None]:
        """The first Docs and Settings lines between ``start`` and ``end``."""
        docs = settings = None
        for i in range(start, end):
            if self.fenced[i]:
                continue
            line = self.lines[i]
            if docs is None and line.startswith(DOCS_PREFIX):
                docs = line
            elif settings is None and line.startswith(SETTINGS_PREFIX):
                settings = line
        return docs, settings

    def _env_section(self, env: _EnvHeading) -> EnvSection:
        heading, end = env.heading, env.end
        docs, settings = self._own_lines(heading + 1, end)
        outer_docs = _inherit("docs_line", env.subphase, env.phase)
        outer_settings = _inherit("settings_line", env.subphase, env.phase)
        table = next(
            (t for t in self.tables if t.kind == TABLE_RESULT and heading < t.start < end), None
        )
        plot = next(
            (
                self.lines[i]
                for i in range(table.end if table else heading + 1, end)
                if not self.fenced[i] and _PLOT_EMBED.match(self.lines[i])
            ),
            None,
        )
        return EnvSection(
            env_id=env.env_id,
            form=FORM_SECTION,
            phase=env.phase.title if env.phase else None,
            subphase=env.subphase.title if env.subphase else None,
            number=env.number,
            docs_line=docs or outer_docs,
            docs_inherited=docs is None and outer_docs is not None,
            settings_line=settings or outer_settings,
            settings_inherited=settings is None and outer_settings is not None,
            target=target_of(docs or outer_docs),
            rows=self._section_rows(table, env.env_id),
            plot_embed=plot,
            start=heading,
            end=end,
            table=table,
            row_lines=list(table.row_indexes) if table is not None else [],
        )

    def _section_rows(self, table: Table | None, env_id: str) -> list[ResultRow]:
        if table is None:
            return []
        return [
            replace(ResultRow.from_cells(table.header, split_cells(self.lines[i])), env=env_id)
            for i in table.row_indexes
        ]

    def _group_sections(self, table: Table) -> list[EnvSection]:
        phase, subphase = _enclosing(self.regions, table.start)
        docs = _inherit("docs_line", subphase, phase)
        settings = _inherit("settings_line", subphase, phase)
        grid = self._grid_after(table, phase, subphase)
        self.grids[table.start] = grid
        grid_images = self._grid_images(grid)
        sections = []
        for env_id, row_lines in self._groups(table):
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
                    plot_embed=_grid_cell(grid_images, env_id),
                    start=row_lines[0],
                    end=row_lines[-1] + 1,
                    table=table,
                    row_lines=row_lines,
                )
            )
        return sections

    def _grid_after(
        self, table: Table, phase: Region | None, subphase: Region | None
    ) -> Table | None:
        """The plots of a shared table: the next image grid before the next heading."""
        limit = subphase.preamble_end if subphase else phase.preamble_end if phase else table.end
        return next(
            (t for t in self.tables if t.kind == TABLE_IMAGE_GRID and table.end <= t.start < limit),
            None,
        )

    def _groups(self, table: Table) -> list[tuple[str, list[int]]]:
        """A shared table's rows by env: a row with an ENV cell starts a group."""
        groups: list[tuple[str, list[int]]] = []
        for i in table.row_indexes:
            env = split_cells(self.lines[i])[0]
            if env or not groups:
                groups.append((env, []))
            groups[-1][1].append(i)
        return groups

    def _group_row(
        self, table: Table, index: int, env_id: str, subphase: Region | None, phase: Region | None
    ) -> ResultRow:
        row = ResultRow.from_cells(table.header, split_cells(self.lines[index]))
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
            for cell in split_cells(self.lines[i]):
                if match := _GRID_IMAGE.search(cell):
                    images.append((match.group(1), cell))
        return images


def _grid_cell(images: list[tuple[str, str]], env_id: str) -> str | None:
    prefix = env_base(env_id) + "_"
    return next((cell for name, cell in images if env_id and name.startswith(prefix)), None)
