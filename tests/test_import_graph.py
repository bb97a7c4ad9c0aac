"""The package's modules import one another without a circle, and in the parts' order.

docs/architecture.md lists the parts (the subpackages) bottom-up under "One module per concept":
a part imports the shared base (the top-level modules but the entries) and the parts listed
before it, never one after it nor an entry; the base imports no part. Every import counts,
wherever it is written: at the top, inside a function (a lazy import) or under ``if
TYPE_CHECKING:``, since each of those hides a circle (or an upward import) rather than removing
it. The one edge left out is a module importing a package that contains it
(``slm_bench.stores.hf`` reading the ``Store`` protocol from ``slm_bench.stores``): Python runs a
package's ``__init__`` before any of its modules, so that is the package's own layout, not a
circle between two concepts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import slm_bench

PACKAGE = Path(slm_bench.__file__).resolve().parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
# The top-level modules that run the package (the slm-bench command, every rule's job): they may
# import any part, and no part imports them.
ENTRIES = {"__main__", "cli", "jobs", "snakemake_io", "script_records"}


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("slm_bench", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported(tree: ast.AST, name: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that a module's code imports (``from P import M`` names module M
    when M is a module of P, else P)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    ancestors = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
    return {module for module in found if module in modules} - ancestors - {name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {
        name: imported(ast.parse(path.read_text(encoding="utf-8")), name, modules)
        for name, path in modules.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_finder_sees_a_circle_hidden_in_a_function_or_type_checking():
    source = {
        "slm_bench.a": "from slm_bench.b import x\n",
        "slm_bench.b": "def f():\n    from slm_bench.c import y\n",
        "slm_bench.c": "if TYPE_CHECKING:\n    import slm_bench.a\n",
        "slm_bench.d": "from slm_bench import a\n",
    }
    modules = dict.fromkeys(source, Path())
    graph = {name: imported(ast.parse(text), name, modules) for name, text in source.items()}
    assert graph["slm_bench.d"] == {"slm_bench.a"}
    assert circles(graph) == [["slm_bench.a", "slm_bench.b", "slm_bench.c"]]


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "slm_bench.formats.benchmarks_md.edit" in graph  # the walk found the subpackages
    assert circles(graph) == []


def documented_parts() -> list[str]:
    """The parts in docs/architecture.md's order, bottom-up (its ``### Title (`part/`)`` lines)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    return re.findall(r"^### [^\n]*\(`(\w+)/`\)$", text, re.M)


def layer(module: str, parts: list[str]) -> int:
    """0 for the shared base, 1.. for the parts in order, past them for the entries."""
    top = module.split(".")[1] if "." in module else ""
    if top in parts:
        return parts.index(top) + 1
    return len(parts) + 1 if top in ENTRIES else 0


def against_the_order(graph: dict[str, set[str]], parts: list[str]) -> list[str]:
    """Every import of a module in a later layer than its importer's."""
    return sorted(
        f"{module} -> {dep}"
        for module, deps in graph.items()
        for dep in deps
        if layer(dep, parts) > layer(module, parts)
    )


def test_the_order_check_sees_an_import_upwards_and_of_an_entry():
    parts = ["formats", "matrix"]
    graph = {
        "slm_bench.errors": {"slm_bench.formats.spec"},  # the base importing a part
        "slm_bench.formats.spec": {"slm_bench.matrix.config", "slm_bench.errors"},
        "slm_bench.matrix.config": {"slm_bench.formats.spec", "slm_bench.jobs"},
        "slm_bench.jobs": {"slm_bench.matrix.config"},  # an entry may import any part
    }
    assert against_the_order(graph, parts) == [
        "slm_bench.errors -> slm_bench.formats.spec",
        "slm_bench.formats.spec -> slm_bench.matrix.config",
        "slm_bench.matrix.config -> slm_bench.jobs",
    ]


def test_the_parts_import_in_the_documented_order():
    parts = documented_parts()
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert sorted(parts) == sorted(folders), "docs/architecture.md lists every part once"
    assert {f"slm_bench.{name}" for name in ENTRIES} <= set(import_graph())
    assert against_the_order(import_graph(), parts) == []
