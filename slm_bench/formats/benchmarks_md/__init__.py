"""SLM-Lab's docs/BENCHMARKS.md: the document, its tables and its edits.

The modules depend one way, each on the ones before it:

- ``rows``: result rows and the column layouts the file has used (cells, MA markers);
- ``model``: the records of the file's index (tables, env sections, phase regions);
- ``parse``: text to exact lines, and lines to the index;
- ``document``: ``Document``, the exact lines plus their index, its queries and line edits;
- ``edit``: ``BenchmarksDoc``, a ``Document`` with the edits the workflow makes (rows, env
  sections, phases, plots, links);
- ``budgets``: the frame budgets a document states, read from it; an edit that must allow them
  is given ``documented_frames``.
"""

from slm_bench.formats.benchmarks_md.budgets import (
    BUDGET_POLICIES,
    FrameBudget,
    FrameBudgets,
    documented_frames,
    read_budgets,
    row_frames,
)
from slm_bench.formats.benchmarks_md.document import Document
from slm_bench.formats.benchmarks_md.edit import BenchmarksDoc, BudgetLookup, new_document
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
)
from slm_bench.formats.benchmarks_md.rows import (
    RESULT_HEADER,
    RESULT_SEPARATOR,
    ResultRow,
    split_ma,
)

__all__ = [
    "BUDGET_POLICIES",
    "FORM_GROUP",
    "FORM_SECTION",
    "RESULT_HEADER",
    "RESULT_SEPARATOR",
    "TABLE_GROUPED",
    "TABLE_IMAGE_GRID",
    "TABLE_OTHER",
    "TABLE_RESULT",
    "BenchmarksDoc",
    "BudgetLookup",
    "Document",
    "EnvSection",
    "FrameBudget",
    "FrameBudgets",
    "Region",
    "ResultRow",
    "Table",
    "documented_frames",
    "new_document",
    "read_budgets",
    "row_frames",
    "split_ma",
]
