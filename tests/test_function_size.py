"""Every function in the package fits a reader's head: at most MAX_LINES lines, definition to
last line (docstring and comments included, decorators not). Complexity is ruff's C901
(``max-complexity`` in pyproject.toml, run by ``make lint``); this test holds the length.

A function kept longer is listed in KEPT with the reason; the list is checked both ways, so an
entry that no longer applies fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import slm_bench

PACKAGE = Path(slm_bench.__file__).resolve().parent
MAX_LINES = 60
# "module path:function name" -> why it stays longer than MAX_LINES.
KEPT: dict[str, str] = {}


def function_lengths(source: str) -> dict[str, int]:
    """Each function's (and method's, and nested function's) length in lines, by qualified
    name (``Class.method``, ``outer.inner``)."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def long_functions() -> dict[str, int]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE.parent).as_posix()
        for name, length in function_lengths(path.read_text(encoding="utf-8")).items():
            if length > MAX_LINES:
                found[f"{module}:{name}"] = length
    return found


def test_no_function_is_longer_than_the_bound():
    over = {name: n for name, n in long_functions().items() if name not in KEPT}
    assert not over, f"functions over {MAX_LINES} lines (split them, or list them in KEPT): {over}"


def test_every_kept_exception_still_applies():
    stale = set(KEPT) - set(long_functions())
    assert not stale, f"KEPT lists functions that are no longer over {MAX_LINES} lines: {stale}"


def test_lengths_are_measured_per_function():
    source = (
        "class A:\n"
        "    def f(self):\n"
        "        def g():\n"
        "            return 1\n"
        "        return g()\n"
        "\n"
        "@decorated\n"
        "async def h():\n"
        "    '''doc'''\n"
        "    pass\n"
    )
    assert function_lengths(source) == {"A.f": 4, "A.f.g": 2, "h": 3}
