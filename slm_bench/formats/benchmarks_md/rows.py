"""Result rows of SLM-Lab's BENCHMARKS.md and the table layouts they appear in.

Every result-table header the file has used is a *layout*: a set of known columns in the
file's own order. Per-env tables (``| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |``,
older files ``... | HF Repo |``) and shared tables (Atari, Playground: ``| ENV | MA | SPEC_NAME |
HF Data |``, older files ``| ENV | Score | SPEC_NAME | HF Repo |``) are read and written
through the same column map, so a row is rendered in exactly the columns of the table it lands in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slm_bench.errors import BenchError
from slm_bench.formats.naming import hf_link

RESULT_COLUMNS = ("Algorithm", "Status", "MA", "SPEC_FILE", "SPEC_NAME", "HF Data")
RESULT_HEADER = "| Algorithm | Status | MA | SPEC_FILE | SPEC_NAME | HF Data |"
RESULT_SEPARATOR = "|-----------|--------|-----|-----------|-----------|---------|"

# Column names (as headers write them) -> the row field they hold.
_SCORE_COLUMNS = ("MA", "Score")
_DATA_COLUMNS = ("HF Data", "HF Repo")
_FIELDS = {
    "Algorithm": "algorithm",
    "Status": "status",
    "SPEC_FILE": "spec_file",
    "SPEC_NAME": "spec_name",
    "ENV": "env",
    **dict.fromkeys(_SCORE_COLUMNS, "ma"),
    **dict.fromkeys(_DATA_COLUMNS, "hf"),
}
# What every known layout has besides its first column (Algorithm or ENV).
_SECTION_FIELDS = ("algorithm", "status", "ma", "spec_file", "spec_name", "hf")
_GROUP_FIELDS = ("env", "ma", "spec_name", "hf")

LAYOUT_SECTION = "section"  # one table per env section
LAYOUT_GROUP = "group"  # one shared table, env cell on the first row of each env's rows

_LINK = re.compile(r"^\[([^\]]*)\]\(([^)\s]*)\)$")
# A status symbol SLM-Lab puts inside an MA cell of a table without a Status column: the
# shared Atari table marks a failed row "❌ 327.79" (before or after the number).
MA_MARKERS = ("❌", "✅", "⚠️", "📊", "🔄")
_MA_MARKER = re.compile(
    rf"^(?P<pre>(?:{'|'.join(MA_MARKERS)})\s*)?(?P<number>.*?)(?P<post>\s*(?:{'|'.join(MA_MARKERS)}))?$"
)
_HF_DATASET_LINK = re.compile(r"\(https?://[^)\s]*/datasets/[^)\s]+\)")


def split_cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    parts = re.split(r"(?<!\\)\|", body) if "\\|" in body else body.split("|")
    return [cell.strip() for cell in parts]


def render_cells(cells: list[str]) -> str:
    # SLM-Lab writes an empty cell as "| |", not "|  |".
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def is_separator(line: str) -> bool:
    body = line.strip()
    return "-" in body and body.startswith("|") and not body.strip("|:- \t")


def layout_of(header: tuple[str, ...]) -> str | None:
    """``section`` or ``group`` for a result-table header the file has used, else None."""
    fields = tuple(field for column in header if (field := _FIELDS.get(column)))
    if len(fields) != len(header) or len(set(fields)) != len(fields):
        return None
    if sorted(fields) == sorted(_SECTION_FIELDS) and fields[0] == "algorithm":
        return LAYOUT_SECTION
    if sorted(fields) == sorted(_GROUP_FIELDS) and fields[0] == "env":
        return LAYOUT_GROUP
    return None


def looks_like_results(header: tuple[str, ...], rows: list[str]) -> bool:
    """A table a reader would take for results: a score or HF data column, or HF data links."""
    named = any(column in _SCORE_COLUMNS + _DATA_COLUMNS for column in header) or (
        "Algorithm" in header and "Status" in header
    )
    return named or any(_HF_DATASET_LINK.search(line) for line in rows)


def split_ma(cell: str) -> tuple[str, str, str]:
    """An MA cell as (marker before, number, marker after), markers with their spacing:
    ``"❌ 327.79"`` -> ``("❌ ", "327.79", "")``; a plain ``"327.79"`` has none."""
    match = _MA_MARKER.match(cell.strip())
    if match is None or not match["number"]:
        return "", cell.strip(), ""
    return match["pre"] or "", match["number"], match["post"] or ""


def strip_dotdot(target: str) -> str:
    return target[3:] if target.startswith("../") else target


def parse_hf_cell(cell: str) -> tuple[str, str]:
    if match := _LINK.match(cell):
        return match.group(1), match.group(2)
    return cell, ""


@dataclass
class ResultRow:
    """One result: a line of a per-env table, or of a shared (Atari/Playground) table.

    ``ma`` keeps the MA (or Score) cell text as shown. ``spec_link`` is the SPEC_FILE link target
    (None: the cell is plain text). For shared-table rows ``algorithm`` is inferred from the spec
    name, ``status`` is empty, ``env`` is inherited from the group's first row and ``spec_file``
    comes from the phase's spec-file links when there are any.
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

    def _cell(self, field: str, show_env: bool) -> str:
        if field == "spec_file":
            return self._spec_cell()
        if field == "hf":
            return self._hf_cell()
        if field == "env" and not show_env:
            return ""
        return self._checked(field, getattr(self, field))

    def render_as(self, header: tuple[str, ...], show_env: bool = True) -> str:
        """The row in the columns of a table with this header (any known layout)."""
        if layout_of(header) is None:
            raise BenchError(f"BENCHMARKS.md: {' | '.join(header)!r} is not a result table")
        return render_cells([self._cell(_FIELDS[column], show_env) for column in header])

    def render(self) -> str:
        """The 6-column per-env table line, formatted exactly as SLM-Lab writes it."""
        return self.render_as(RESULT_COLUMNS)

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
    def from_cells(cls, header: tuple[str, ...], cells: list[str]) -> ResultRow:
        """Read a table line's cells by the table's own header (missing cells are empty)."""
        values = dict.fromkeys(_SECTION_FIELDS + _GROUP_FIELDS, "")
        for column, cell in zip(header, cells + [""] * len(header), strict=False):
            values[_FIELDS[column]] = cell
        spec_file, spec_link = values["spec_file"], None
        if match := _LINK.match(spec_file):
            spec_file, spec_link = match.group(1), match.group(2)
        folder, url = parse_hf_cell(values["hf"])
        return cls(
            algorithm=values["algorithm"],
            status=values["status"],
            ma=values["ma"],
            spec_file=spec_file,
            spec_name=values["spec_name"],
            hf_folder=folder,
            hf_url=url,
            spec_link=spec_link,
            env=values["env"],
        )
