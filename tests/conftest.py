"""Parallel runs: `make test` runs the suite on several pytest-xdist workers with
``--dist loadgroup``, where the tests of one ``xdist_group`` run on one worker, one after another.

Tests that share a module- or session-scoped fixture (a results tree built once, a dstack server,
a trained run) are put in one group per such fixture here, so that fixture is still built once,
as in a serial run, instead of once on every worker that runs one of them. A resource of which
only one can run on a machine (the test Slurm cluster) carries its group in its test file.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from _pytest.nodeid import NodeId

TESTS = Path(__file__).resolve().parent


def shared_fixture_group(item: pytest.Item) -> str | None:
    """The group of the tests' own module- or session-scoped fixtures ``item`` uses: one per
    test module (all of its module-scoped fixtures), one per session-scoped fixture; or None."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    groups = set()
    for name, definitions in info.name2fixturedefs.items():
        definition = definitions[-1]  # the one that applies to this item
        if definition.scope not in ("module", "package", "session"):
            continue
        if TESTS not in Path(inspect.getfile(definition.func)).resolve().parents:
            continue  # pytest's own (tmp_path_factory...) cost nothing to set up twice
        if definition.scope == "module":
            groups.add(f"module:{item.module.__name__}")
        else:
            groups.add(f"session:{name}")
    return "+".join(sorted(groups)) or None


@pytest.hookimpl(tryfirst=True)  # before xdist's hook reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = shared_fixture_group(item)
            if group:
                item.add_marker(pytest.mark.xdist_group(group))


class GroupNodeIds:
    """pytest-xdist's loadgroup scheduler groups the tests whose node id ends in ``@GROUP``;
    xdist 3.8 writes that id to ``item._nodeid``, which pytest 9.2 no longer reads (the id is
    ``item._id``), so every test would be scheduled on its own. This writes it where pytest
    reads it, after xdist's hook; an id that already has its group is left as it is."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                            for m in item.iter_markers("xdist_group")})  # fmt: skip
            if names and "@" not in item.nodeid:
                item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "loadgroup", False):  # set on xdist's workers by --dist loadgroup
        config.pluginmanager.register(GroupNodeIds(), "group-node-ids")
