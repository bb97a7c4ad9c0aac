"""The records BENCHMARKS.md's index is made of: tables, env sections and phase regions.

Each record names lines by their 0-based index in the document it was taken from; an edit
rebuilds the index, so a record taken before an edit is a stale snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slm_bench.formats.benchmarks_md.rows import ResultRow

# Table kinds (``Table.kind``).
TABLE_RESULT = "result"  # a per-env result table (section layout)
TABLE_GROUPED = "grouped"  # a shared result table (group layout)
TABLE_IMAGE_GRID = "image_grid"
TABLE_OTHER = "other"

# EnvSection forms (``EnvSection.form``).
FORM_SECTION = "section"
FORM_GROUP = "group"

_TARGET = re.compile(r"Target reward MA\s*(.*?)\s*$")


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
class Region:
    """A phase (``###``) or sub-phase (non-env ``####``) inside ``## Results``."""

    title: str
    level: int  # 3 for a phase, 4 for a sub-phase
    heading: int
    end: int  # exclusive: next heading of the same or a higher level
    preamble_end: int  # exclusive: next heading of level <= 4
    docs_line: str | None = None
    settings_line: str | None = None
    spec_links: dict[str, str] = field(default_factory=dict)


def target_of(docs_line: str | None) -> str | None:
    """The text after ``Target reward MA`` in a Docs line, or None."""
    if docs_line is None:
        return None
    match = _TARGET.search(docs_line)
    return match.group(1) if match else None
