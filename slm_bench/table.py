"""SLM-Lab's docs/BENCHMARKS.md as a list of lines plus indexes of its structures.

Parsing never rewrites a line: the document keeps every line's text and line ending, and edits
replace or insert whole lines, so everything an edit does not touch stays byte-identical. After
each edit the indexes are rebuilt from the lines, so any ``EnvSection`` or ``Table`` taken before
an edit is a stale snapshot.

Two result-table forms exist (see the SLM-Lab formats reference, section 4):

- per-env sections: ``#### 1.1 CartPole-v1`` heading, ``**Docs**:`` and ``**Settings**:`` lines,
  a ``| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |`` table, then a plot embed;
- shared tables (Atari, Playground): ``| ENV | MA | SPEC_NAME | HF Data |`` where the ENV cell is
  set only on the first row of each env's group, Docs/Settings come from the phase (or
  sub-phase) preamble and plots sit in an image grid table.

Both forms are exposed as ``EnvSection`` objects (``form`` says which).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from slm_bench.atomic import write_text
from slm_bench.errors import BenchError
from slm_bench.naming import algorithm_from_spec_name, env_base, hf_link
from slm_bench.spec import algorithm_rank

# Status cells of the legend beyond the three the status rule computes (settings.STATUS_*).
STATUS_ACCEPTABLE = "📊"
STATUS_PENDING = "🔄"

RESULT_COLUMNS = ("Algorithm", "Status", "MA", "SPEC_FILE", "SPEC_NAME", "HF Data")
GROUPED_COLUMNS = ("ENV", "MA", "SPEC_NAME", "HF Data")
RESULT_HEADER = "| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |"
RESULT_SEPARATOR = "|-----------|--------|-----|-----------|-----------|---------|"

# Table kinds returned by BenchmarksDoc.tables().
TABLE_RESULT = "result"
TABLE_GROUPED = "grouped"
TABLE_IMAGE_GRID = "image_grid"
TABLE_OTHER = "other"

# EnvSection forms.
FORM_SECTION = "section"
FORM_GROUP = "group"

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*$")
_ENV_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?[ \t]+(\S+)$")
_PHASE_NUMBER = re.compile(r"^Phase[ \t]+(\d+)\b")
_LINK = re.compile(r"^\[([^\]]*)\]\(([^)\s]*)\)$")
_PLOT_EMBED = re.compile(r"^!\[[^\]]*\]\((?:[^)\s]*/)?plots/[^)]+\)[ \t]*$")
_GRID_IMAGE = re.compile(r"!\[[^\]]*\]\(plots/([^)]+)\)")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])( *\1){2,} *$")
_TARGET = re.compile(r"Target reward MA\s*(.*?)\s*$")
_PHASE_SPEC_BULLET = re.compile(r"^\s*[-*]\s+\*\*([^*]+)\*\*:\s*\[[^\]]*\]\(([^)\s]+)\)")
_PHASE_SPEC_FILE = re.compile(r"^\*\*Spec files?\*\*:\s*\[[^\]]*\]\(([^)\s]+)\)", re.IGNORECASE)
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DOCS_PREFIX = "**Docs**:"
_SETTINGS_PREFIX = "**Settings**:"


def _split_cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    parts = re.split(r"(?<!\\)\|", body) if "\\|" in body else body.split("|")
    return [cell.strip() for cell in parts]


def _render_cells(cells: list[str]) -> str:
    # SLM-Lab writes an empty cell as "| |", not "|  |".
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def _is_separator(line: str) -> bool:
    body = line.strip()
    return "-" in body and body.startswith("|") and not body.strip("|:- \t")


def _strip_dotdot(target: str) -> str:
    return target[3:] if target.startswith("../") else target


@dataclass
class ResultRow:
    """One result: a line of a per-env table, or of a shared (Atari/Playground) table.

    ``ma`` keeps the MA cell text as shown. ``spec_link`` is the SPEC_FILE link target (None:
    the cell is plain text). For shared-table rows ``algorithm`` is inferred from the spec name,
    ``status`` is empty, ``env`` is inherited from the group's first row and ``spec_file`` comes
    from the phase's spec-file links when there are any.
    """

    algorithm: str
    status: str
    ma: str
    spec_file: str
    spec_name: str
    hf_folder: str
    hf_url: str
    spec_link: str | None = None
    env: str = ""

    def _checked(self, name: str, value: str) -> str:
        if "|" in value or "\n" in value or "\r" in value:
            raise BenchError(
                f"BENCHMARKS.md row field {name}: expected text without '|' or line breaks, "
                f"got {value!r}"
            )
        return value

    def _spec_cell(self) -> str:
        spec_file = self._checked("spec_file", self.spec_file)
        if self.spec_link is None:
            return spec_file
        return f"[{spec_file}]({self._checked('spec_link', self.spec_link)})"

    def _hf_cell(self) -> str:
        folder = self._checked("hf_folder", self.hf_folder)
        if not self.hf_url:
            return folder  # e.g. "-" for a run not uploaded yet
        return hf_link(folder, self._checked("hf_url", self.hf_url))

    def render(self) -> str:
        """The 6-column per-env table line, formatted exactly as SLM-Lab writes it."""
        return _render_cells(
            [
                self._checked("algorithm", self.algorithm),
                self._checked("status", self.status),
                self._checked("ma", self.ma),
                self._spec_cell(),
                self._checked("spec_name", self.spec_name),
                self._hf_cell(),
            ]
        )

    def render_grouped(self, show_env: bool) -> str:
        """The 4-column shared-table line; the ENV cell is filled only on a group's first row."""
        env = self._checked("env", self.env) if show_env else ""
        return _render_cells(
            [
                env,
                self._checked("ma", self.ma),
                self._checked("spec_name", self.spec_name),
                self._hf_cell(),
            ]
        )

    @classmethod
    def build(
        cls,
        algorithm: str,
        status: str,
        score: float,
        spec_file: str,
        spec_name: str,
        folder: str,
        url: str,
        spec_link_prefix: str = "../",
    ) -> ResultRow:
        """A new row: MA formatted ``%.2f``, SPEC_FILE linked as ``prefix + spec_file``."""
        try:
            ma = f"{float(score):.2f}"
        except (TypeError, ValueError) as error:
            raise BenchError(
                f"BENCHMARKS.md row field ma: expected a number, got {score!r}"
            ) from error
        row = cls(
            algorithm=algorithm,
            status=status,
            ma=ma,
            spec_file=spec_file,
            spec_name=spec_name,
            hf_folder=folder,
            hf_url=url,
            spec_link=spec_link_prefix + spec_file,
        )
        row.render()  # validate every cell now, not at write time
        return row

    @classmethod
    def _from_cells(cls, cells: list[str]) -> ResultRow:
        cells = (cells + [""] * 6)[:6]
        algorithm, status, ma, spec_cell, spec_name, hf_cell = cells
        spec_file, spec_link = spec_cell, None
        if match := _LINK.match(spec_cell):
            spec_file, spec_link = match.group(1), match.group(2)
        folder, url = _parse_hf_cell(hf_cell)
        return cls(algorithm, status, ma, spec_file, spec_name, folder, url, spec_link)


def _parse_hf_cell(cell: str) -> tuple[str, str]:
    if match := _LINK.match(cell):
        return match.group(1), match.group(2)
    return cell, ""


@dataclass(frozen=True)
class Table:
    """A markdown table: ``start`` is the header line index, ``end`` is exclusive."""

    start: int
    end: int
    header: tuple[str, ...]
    kind: str
    text: str = field(repr=False)

    @property
    def row_indexes(self) -> range:
        return range(self.start + 2, self.end)


@dataclass
class EnvSection:
    """One env's results, as a heading section (``form == "section"``) or a shared-table group.

    ``docs_line``/``settings_line`` are the env's own lines or, when ``docs_inherited`` /
    ``settings_inherited`` is true, the enclosing sub-phase's or phase's. ``plot_embed`` is the
    ``![...](plots/...)`` line of a section, or the image-grid cell of a group. ``start``/``end``
    span the section (heading to next heading) or the group's rows; ``row_lines`` are the line
    indexes of ``rows``.
    """

    env_id: str
    form: str
    phase: str | None
    subphase: str | None
    number: str | None
    docs_line: str | None
    docs_inherited: bool
    settings_line: str | None
    settings_inherited: bool
    target: str | None
    rows: list[ResultRow]
    plot_embed: str | None
    start: int
    end: int
    table: Table | None
    row_lines: list[int]


@dataclass
class _Region:
    """A phase (``###``) or sub-phase (non-env ``####``) inside ``## Results``."""

    title: str
    level: int  # 3 for a phase, 4 for a sub-phase
    heading: int
    end: int  # exclusive: next heading of the same or a higher level
    preamble_end: int  # exclusive: next heading of level <= 4
    docs_line: str | None = None
    settings_line: str | None = None
    spec_links: dict[str, str] = field(default_factory=dict)


def _target_of(docs_line: str | None) -> str | None:
    if docs_line is None:
        return None
    match = _TARGET.search(docs_line)
    return match.group(1) if match else None


class BenchmarksDoc:
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
        self._regions: list[_Region] = []
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

        phase: _Region | None = None
        subphase: _Region | None = None
        sections: list[tuple[int, int, str, str, _Region | None, _Region | None]] = []
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
            if is_table_line(i) and is_table_line(i + 1) and _is_separator(lines[i + 1]):
                end = i + 2
                while is_table_line(end):
                    end += 1
                header = tuple(_split_cells(lines[i]))
                if header == RESULT_COLUMNS:
                    kind = TABLE_RESULT
                elif header == GROUPED_COLUMNS:
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

    def _region(self, title: str, level: int, heading: int, end: int, preamble_end: int) -> _Region:
        region = _Region(title, level, heading, end, preamble_end)
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
    def _inherit(attr: str, *regions: _Region | None) -> str | None:
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
        phase: _Region | None,
        subphase: _Region | None,
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
                    replace(ResultRow._from_cells(_split_cells(self._lines[i])), env=env_id)
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
            target=_target_of(docs),
            rows=rows,
            plot_embed=plot,
            start=heading,
            end=end,
            table=table,
            row_lines=row_lines,
        )

    def _enclosing(self, index: int) -> tuple[_Region | None, _Region | None]:
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
            env = _split_cells(self._lines[i])[0]
            if env or not groups:
                groups.append((env, []))
            groups[-1][1].append(i)
        sections = []
        for env_id, row_lines in groups:
            rows = [self._group_row(i, env_id, subphase, phase) for i in row_lines]
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
                    target=_target_of(docs),
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
        self, index: int, env_id: str, subphase: _Region | None, phase: _Region | None
    ) -> ResultRow:
        cells = (_split_cells(self._lines[index]) + [""] * 4)[:4]
        _, ma, spec_name, hf_cell = cells
        algorithm = algorithm_from_spec_name(spec_name)
        link = None
        for region in (subphase, phase):
            if region is not None:
                link = region.spec_links.get(algorithm) or region.spec_links.get("*")
                if link:
                    break
        folder, url = _parse_hf_cell(hf_cell)
        return ResultRow(
            algorithm=algorithm,
            status="",
            ma=ma,
            spec_file=_strip_dotdot(link) if link else "",
            spec_name=spec_name,
            hf_folder=folder,
            hf_url=url,
            spec_link=link,
            env=env_id,
        )

    def _grid_images(self, grid: Table | None) -> list[tuple[str, str]]:
        """(plot file name, cell text) of every image in an image grid."""
        if grid is None:
            return []
        images = []
        for i in grid.row_indexes:
            for cell in _split_cells(self._lines[i]):
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
                    rows.append(ResultRow._from_cells(_split_cells(self._lines[i])))
        return rows

    def phases(self) -> list[str]:
        """Titles of the ``###`` phases under ``## Results``."""
        return [region.title for region in self._regions if region.level == 3]

    # ------------------------------------------------------------------------------ edits

    def _replace_line(self, index: int, text: str) -> None:
        if self._lines[index] != text:
            self._lines[index] = text
            self._reindex()

    def _insert_lines(self, at: int, texts: list[str]) -> None:
        if not texts:
            return
        ends = [self._newline] * len(texts)
        if at == len(self._lines) and self._lines and self._ends[-1] == "":
            # Keep a file without a trailing newline that way: the new last line has none.
            self._ends[-1] = self._newline
            ends[-1] = ""
        self._lines[at:at] = texts
        self._ends[at:at] = ends
        self._reindex()

    def _require_env(self, env_id: str) -> EnvSection:
        section = self.find_env(env_id)
        if section is None:
            raise BenchError(
                f"{self.source}: env {env_id!r} has no results section (expected a "
                f"'#### N.M {env_id}' heading or a group in an '| ENV | MA |' table)"
            )
        return section

    def upsert_row(self, env_id: str, row: ResultRow) -> None:
        """Replace the env's row for the same algorithm (and spec_name, if the algorithm has
        several rows), or insert the row in SLM-Lab's algorithm order.

        In a shared (Atari/Playground) table the row is written in the 4-column form (status and
        SPEC_FILE have no column there) and a new row goes at the end of the env's group, the
        order the file itself uses.
        """
        section = self._require_env(env_id)
        row = replace(row, env=env_id)
        match = self._matching_row(section, row)
        if section.form == FORM_GROUP:
            if match is not None:
                line = section.row_lines[match]
                self._replace_line(line, row.render_grouped(line == section.row_lines[0]))
            else:  # groups keep the file's own order: append at the group's end
                self._insert_lines(section.row_lines[-1] + 1, [row.render_grouped(False)])
            return
        if section.table is None:
            raise BenchError(
                f"{self.source}: section {env_id!r} has no results table (expected a "
                f"'{RESULT_HEADER}' table)"
            )
        if match is not None:
            self._replace_line(section.row_lines[match], row.render())
            return
        rank = algorithm_rank(row.algorithm)
        at = section.table.start + 2
        for i, existing in zip(section.row_lines, section.rows, strict=True):
            if algorithm_rank(existing.algorithm) <= rank:
                at = i + 1
        self._insert_lines(at, [row.render()])

    @staticmethod
    def _matching_row(section: EnvSection, row: ResultRow) -> int | None:
        same = [k for k, r in enumerate(section.rows) if r.algorithm == row.algorithm]
        if len(same) == 1:
            return same[0]
        return next((k for k in same if section.rows[k].spec_name == row.spec_name), None)

    def ensure_env(
        self, env_id: str, docs_line: str, settings_line: str, phase: str | None = None
    ) -> EnvSection:
        """Return the env's section, or create one (heading, Docs, Settings, empty table) at the
        end of ``phase`` (a ``Phase N: Title`` heading or just its title; created if missing)."""
        existing = self.find_env(env_id)
        if existing is not None:
            return existing
        if not env_id or any(ch.isspace() or ch == "|" for ch in env_id):
            raise BenchError(
                f"{self.source}: env id {env_id!r} is not usable in a heading "
                "(expected a non-empty id without spaces or '|')"
            )
        if self._results is None:
            at = self._append_point(len(self._lines))
            self._insert_lines(at, ["", "## Results"] if at else ["## Results"])
        assert self._results is not None
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
            end = self._results[1]
        siblings = [
            s
            for s in self._sections
            if s.form == FORM_SECTION and s.phase == (region.title if region else None)
        ]
        last = max((_last_number(s.number) for s in siblings), default=0)
        number = f"{number_prefix}.{last + 1}" if number_prefix else str(last + 1)
        block = ["", f"#### {number} {env_id}"]
        for line, prefix in ((docs_line, _DOCS_PREFIX), (settings_line, _SETTINGS_PREFIX)):
            if line:
                _check_single_line(self.source, prefix, line)
                block += ["", line if line.startswith(prefix) else f"{prefix} {line}"]
        block += ["", RESULT_HEADER, RESULT_SEPARATOR]
        at = self._append_point(end)
        if at < len(self._lines) and self._lines[at].strip():
            block.append("")
        self._insert_lines(at, block)
        section = self.find_env(env_id)
        assert section is not None
        return section

    def _append_point(self, end: int) -> int:
        """Where to append content to a region ending at ``end``: after its last content line,
        before trailing blank lines and a closing ``---`` rule."""
        at = end
        while at > 0 and not self._lines[at - 1].strip():
            at -= 1
        if (
            at > 1
            and _THEMATIC_BREAK.match(self._lines[at - 1])
            and not self._lines[at - 2].strip()
        ):
            at -= 1
            while at > 0 and not self._lines[at - 1].strip():
                at -= 1
        return at

    def _find_phase(self, phase: str) -> _Region | None:
        for region in self._regions:
            if region.level != 3:
                continue
            title = region.title
            if title == phase or re.sub(r"^Phase\s+\d+(?:\.\d+)*:\s*", "", title) == phase:
                return region
        return None

    def _create_phase(self, phase: str) -> _Region:
        _check_single_line(self.source, "phase", phase)
        title = phase
        if not _PHASE_NUMBER.match(phase):
            numbers = [_phase_number(p) for p in self.phases()]
            title = f"Phase {max((int(n) for n in numbers if n), default=0) + 1}: {phase}"
        assert self._results is not None
        at = self._append_point(self._results[1])
        block = ["", f"### {title}"]
        if at < len(self._lines) and self._lines[at].strip():
            block.append("")
        self._insert_lines(at, block)
        region = self._find_phase(title)
        assert region is not None
        return region

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
        if after < len(self._lines) and self._lines[after].strip():
            block.append("")
        self._insert_lines(after, block)

    def _fill_grid(self, section: EnvSection, png_name: str) -> bool:
        assert section.table is not None
        grid = self._grids.get(section.table.start)
        if grid is None:
            return False
        alt = re.sub(r"-v\d+$", "", env_base(section.env_id))
        image = f"![{alt}](plots/{png_name})"
        columns = len(grid.header)
        last = grid.end - 1
        cells = _split_cells(self._lines[last]) if last >= grid.start + 2 else []
        if cells and "" in cells:
            cells[cells.index("")] = image
            self._replace_line(last, _render_cells(cells))
        else:
            self._insert_lines(grid.end, [_render_cells([image] + [""] * (columns - 1))])
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
        for table in self._tables:
            if table.kind not in (TABLE_RESULT, TABLE_GROUPED):
                continue
            for i in table.row_indexes:
                line = self._lines[i]
                # Only the last cell (HF Data) is rewritten; the rest of the line keeps its bytes.
                stripped = line.rstrip()
                close = len(stripped) - 1 if stripped.endswith("|") else len(stripped)
                open_ = line.rfind("|", 0, close)
                if open_ < 0:
                    continue
                cell = line[open_:close]
                new_cell, n = pattern.subn(rf"\g<1>{new_repo}\g<2>", cell)
                if n:
                    self._lines[i] = line[:open_] + new_cell + line[close:]
                    count += n
        if count:
            self._reindex()
        return count


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


def new_document(title: str = "SLM-Lab Benchmarks") -> BenchmarksDoc:
    """A minimal BENCHMARKS.md (title and ``## Results``) for ``ensure_env`` and friends to fill."""
    _check_single_line("BENCHMARKS.md", "title", title)
    return BenchmarksDoc.parse(f"# {title}\n\n## Results\n")
