"""Per-algorithm frame budgets that SLM-Lab's BENCHMARKS.md documents below its Settings lines.

SLM-Lab's maintainers treat a Settings line's max_frame as the upper limit: off-policy
algorithms run on smaller, documented budgets. The file documents them in three ways, all read
here (most specific first):

1. a reproduce table with ``ENV``, ``SPEC_NAME`` and ``MAX_FRAME`` columns (any order, any extra
   columns; an empty ENV cell continues the previous row's env): the budget of one spec on one
   env, e.g. MuJoCo ``| | sac_ant_arc | 2e6 |``;
2. a phase's spec bullets with a ``max_frame=`` setting:
   ``- **SAC**: [sac_atari_arc.yaml](...) - ..., max_frame=2e6`` (every SAC row of the phase);
3. a ``**Note on ... frame budgets**:`` paragraph giving an algorithm a range
   (``SAC benchmarks use 1-4M frames``): a spec that hard-codes a max_frame in that range runs
   at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md.document import Document
from slm_bench.formats.benchmarks_md.model import TABLE_OTHER, EnvSection
from slm_bench.formats.benchmarks_md.rows import ResultRow, split_cells
from slm_bench.formats.naming import ALGORITHM_ORDER
from slm_bench.formats.settings import Frames, Range, format_number, parse_number

# How rows whose spec's max_frame is below the Settings line are treated (checkout.frame_budgets).
BUDGET_POLICIES = ("documented", "settings", "spec")

_BULLET = re.compile(
    r"^\s*[-*]\s+\*\*([^*]+)\*\*:.*?\bmax_frame\s*=\s*([0-9][0-9.]*(?:e[+-]?[0-9]+)?[kmb]?)\b",
    re.IGNORECASE,
)
_NOTE = re.compile(r"^\s*\*\*Note on [^*]*frame budgets?\*\*\s*:\s*(.*)$", re.IGNORECASE)
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)\s*([kmb])\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class FrameBudget:
    """A documented budget: exact frames, or a range; ``line`` is 1-based in the file."""

    frames: int | Range
    line: int
    where: str  # "MAX_FRAME table", "spec list", "frame budget note"

    def describe(self) -> str:
        frames = self.frames if isinstance(self.frames, Range) else format_number(self.frames)
        return f"{frames} ({self.where}, line {self.line})"


@dataclass
class FrameBudgets:
    """Every budget a BENCHMARKS.md documents; ``find`` picks the one for a row."""

    by_spec: dict[tuple[str, str], FrameBudget] = field(default_factory=dict)
    by_algorithm: dict[tuple[str | None, str], FrameBudget] = field(default_factory=dict)
    ranges: dict[tuple[str | None, str], FrameBudget] = field(default_factory=dict)

    def find(
        self, env_id: str, phase: str | None, algorithm: str, spec_name: str
    ) -> FrameBudget | None:
        """The budget documented for a row: its spec on its env, else its algorithm in its
        phase (exact, then a range); None when the file documents none."""
        return (
            self.by_spec.get((env_id, spec_name))
            or self.by_algorithm.get((phase, algorithm))
            or self.ranges.get((phase, algorithm))
        )


def _frames(text: str) -> Frames | None:
    try:
        return Frames(parse_number(text.strip()))
    except BenchError:
        return None


def _label_in(sentence: str) -> str | None:
    """The algorithm a sentence is about: the first of SLM-Lab's labels it names."""
    found = []
    for label in ALGORITHM_ORDER:
        match = re.search(rf"(?<![\w+]){re.escape(label)}(?![\w+])", sentence)
        if match:
            found.append((match.start(), label))
    return min(found)[1] if found else None


def _read_tables(doc: Document, budgets: FrameBudgets) -> None:
    for table in doc.tables():
        if table.kind != TABLE_OTHER or not {"MAX_FRAME", "SPEC_NAME"} <= set(table.header):
            continue
        column = {name: k for k, name in enumerate(table.header)}
        env = ""
        for i in table.row_indexes:
            cells = split_cells(doc.line(i)) + [""] * len(table.header)
            env = cells[column["ENV"]] if "ENV" in column and cells[column["ENV"]] else env
            frames = _frames(cells[column["MAX_FRAME"]])
            spec_name = cells[column["SPEC_NAME"]]
            if env and spec_name and frames is not None:
                budget = FrameBudget(frames, i + 1, "MAX_FRAME table")
                budgets.by_spec.setdefault((env, spec_name), budget)


def _read_prose(doc: Document, budgets: FrameBudgets) -> None:
    for i, line in enumerate(doc.lines):
        if doc.is_fenced(i):
            continue
        if match := _BULLET.match(line):
            frames = _frames(match.group(2))
            if frames is not None:
                key = (doc.phase_at(i), match.group(1).strip())
                budgets.by_algorithm.setdefault(key, FrameBudget(frames, i + 1, "spec list"))
        elif match := _NOTE.match(line):
            for sentence in _SENTENCE_END.split(match.group(1)):
                label, found = _label_in(sentence), _RANGE.search(sentence)
                if label is None or found is None:
                    continue
                low, high, unit = found.groups()
                low_frames, high_frames = _frames(low + unit), _frames(high + unit)
                if low_frames is None or high_frames is None or low_frames > high_frames:
                    continue
                budget = FrameBudget(Range(low_frames, high_frames), i + 1, "frame budget note")
                budgets.ranges.setdefault((doc.phase_at(i), label), budget)


def read_budgets(doc: Document) -> FrameBudgets:
    """Every frame budget the document states (see the module docstring)."""
    budgets = FrameBudgets()
    _read_tables(doc, budgets)
    _read_prose(doc, budgets)
    return budgets


def documented_frames(doc: Document, section: EnvSection, row: ResultRow) -> int | None:
    """The exact frame budget ``doc`` documents for a row of ``section``, else None (a
    ``BudgetLookup`` for the document's edits: read from the document as it is now)."""
    budget = read_budgets(doc).find(section.env_id, section.phase, row.algorithm, row.spec_name)
    return budget.frames if budget is not None and isinstance(budget.frames, int) else None


def upper_limit(max_frame: int | Range) -> int:
    """The largest max_frame a Settings value allows (a range's high end)."""
    return max_frame.high if isinstance(max_frame, Range) else max_frame


def row_frames(
    budget: FrameBudget | None,
    settings_frames: int | Range,
    spec_frames: int | None,
    policy: str = "documented",
) -> int | None:
    """The max_frame a row runs at when it is not its Settings value, else None.

    ``budget`` is the row's documented budget, ``spec_frames`` the max_frame its spec hard-codes
    (None when it comes from ``${max_frame}``). Policies: ``documented`` uses an exact budget, or
    the spec's own value when it lies in a documented range; ``settings`` ignores budgets (every
    row at its Settings line); ``spec`` also accepts a spec's own value below the Settings line
    without a documented budget. A documented budget above the Settings max_frame is an error.
    """
    if policy not in BUDGET_POLICIES:
        raise BenchError(
            f"checkout.frame_budgets {policy!r}: expected one of {', '.join(BUDGET_POLICIES)}"
        )
    if policy == "settings":
        return None
    limit = upper_limit(settings_frames)
    frames = None
    if budget is not None:
        if isinstance(budget.frames, int):
            frames = budget.frames
        elif spec_frames is not None and spec_frames in budget.frames:
            frames = spec_frames
    elif policy == "spec" and spec_frames is not None:
        frames = spec_frames if spec_frames < limit else None
    if frames is None:
        return None
    if frames > limit:
        assert budget is not None  # a spec's own value above the limit was dropped above
        raise BenchError(
            f"documented frame budget {budget.describe()} is above the Settings max_frame "
            f"{format_number(limit)} (expected at most the Settings line)"
        )
    return None if frames == settings_frames else frames
