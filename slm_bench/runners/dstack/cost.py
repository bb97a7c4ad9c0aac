"""What the planned remote runs cost per hour, against SLM-Lab's own choice of hardware.

dstack bills the offer it finds, at most the task's ``max_price`` per hour: the caps are what a
plan can promise. SLM-Lab's choice is ``run-remote`` (CPU) for vector-state envs and
``run-remote --gpu`` for image envs, with the caps of its .dstack files and the typical prices
its docstring quotes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from slm_bench.runners.dstack.options import Sources
from slm_bench.runners.dstack.task import (
    SLM_LAB_TASKS,
    TYPICAL_PRICE,
    apply_overrides,
    choose_hardware,
    load_slm_lab_task,
    task_mode,
)

SLM_LAB_CHOICE = {"hardware": "auto", "env_hardware": {}}


@dataclass(frozen=True)
class CellCost:
    cell: str
    group: str  # the phase (or env) the cell is summed under
    hardware: str
    max_price: float | None  # as planned (None: no cap)
    slm_lab_hardware: str
    slm_lab_max_price: float | None
    slm_lab_typical: float
    overrides: tuple[str, ...] = ()  # what the options change in the task


def _task(hardware: str, mode: str, sources: Sources, inner: str) -> dict:
    if inner == "slm-lab" and sources.checkout is not None:
        return load_slm_lab_task(sources.checkout, hardware, mode)
    return copy.deepcopy(SLM_LAB_TASKS[(hardware, task_mode(mode))])


def cell_cost(
    cell: str,
    group: str,
    env_id: str,
    spec_body: dict | None,
    opts: dict,
    sources: Sources,
    mode: str = "train",
) -> CellCost:
    """The planned cap per hour of one cell, and SLM-Lab's own for it."""
    inner = sources.inner_runner(opts)
    hardware, _ = choose_hardware(env_id, spec_body, opts)
    planned = _task(hardware, mode, sources, inner)
    overrides = apply_overrides(planned, opts, 0, sources.config)
    theirs, _ = choose_hardware(env_id, spec_body, {**opts, **SLM_LAB_CHOICE})
    own = _task(theirs, mode, sources, inner)
    return CellCost(
        cell=cell,
        group=group,
        hardware=hardware,
        max_price=planned.get("max_price"),
        slm_lab_hardware=theirs,
        slm_lab_max_price=own.get("max_price"),
        slm_lab_typical=TYPICAL_PRICE[(theirs, task_mode(mode))],
        overrides=tuple(overrides),
    )


def _mix(hardware: list[str]) -> str:
    return ", ".join(f"{hardware.count(hw)} {hw}" for hw in ("cpu", "gpu") if hw in hardware)


def _cap(prices: list[float | None]) -> str:
    known = [price for price in prices if price is not None]
    if len(known) < len(prices):
        return "no cap (max_price unset)"
    return f"at most ${sum(known):.2f}/h"


def render_costs(costs: list[CellCost]) -> str:
    """Per group (phase): the planned caps against SLM-Lab's choice, one line each."""
    if not costs:
        return ""
    lines = ["Per-hour cost with every cell running at once (dstack bills at most max_price):"]
    groups: dict[str, list[CellCost]] = {}
    for cost in costs:
        groups.setdefault(cost.group, []).append(cost)
    for group, items in groups.items():
        planned = f"{_mix([c.hardware for c in items])}, {_cap([c.max_price for c in items])}"
        typical = sum(c.slm_lab_typical for c in items)
        theirs = (
            f"{_mix([c.slm_lab_hardware for c in items])},"
            f" {_cap([c.slm_lab_max_price for c in items])} (typically ~${typical:.2f}/h)"
        )
        lines.append(
            f"  {group}: {len(items)} cells: as planned {planned}; SLM-Lab's own choice {theirs}"
        )
    changed = sorted({line for cost in costs for line in cost.overrides})
    if changed:
        lines.append(f"  overrides on the tasks: {'; '.join(changed)}")
    return "\n".join(lines) + "\n"
