"""The Status column's rules: the computed status of a score against its target (Solved, Close
by the Legend's rule or from a random policy's baseline, Failed), the words for its symbols, and
the symbols a BENCHMARKS.md's ``**Legend**:`` line declares."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from slm_bench.errors import BenchError
from slm_bench.formats.settings import Target

STATUS_SOLVED = "✅"
STATUS_CLOSE = "⚠️"
STATUS_FAILED = ""
CLOSE_PROGRESS = 0.8
# legend: the rule BENCHMARKS.md's Legend line states ("⚠️ Close (>80%)" of the target);
# baseline: 80% of the way from a random policy's return to the target, for every target.
STATUS_RULES = ("legend", "baseline")

_STATUS_LABELS = {
    STATUS_SOLVED: "Solved",
    STATUS_CLOSE: "Close",
    STATUS_FAILED: "Failed",
    "❌": "Failed",  # older BENCHMARKS.md versions marked failures explicitly
    "📊": "Acceptable",
    "🔄": "In progress",
}


def progress_from(score: float, goal: float, random_return: float | None) -> float:
    """How far ``score`` is from a random policy's return to the goal (1.0 = at the goal).

    When the random return is unknown, or not below the goal, random = goal - |goal| - 1,
    which measures progress on the goal's own scale.
    """
    random = goal - abs(goal) - 1
    if random_return is not None and math.isfinite(random_return) and random_return < goal:
        random = random_return
    return (score - random) / (goal - random)


def computed_status(
    score: float, target: Target | None, random_return: float | None, rule: str = "legend"
) -> str:
    """Status of a score against its environment's target: ✅, ⚠️ or empty (Failed).

    Solved (✅) when score >= target. Close (⚠️), by ``rule``:

    - ``legend`` (BENCHMARKS.md's own Legend, "⚠️ Close (>80%)"): score >= 80% of a positive
      target; for a target <= 0, where 80% of it means nothing, progress from the random
      policy's return to the target >= 0.8;
    - ``baseline``: progress from the random policy's return >= 0.8, for every target.

    A "~" target counts as its value. No target gives an empty status; a NaN score is Failed.
    """
    if rule not in STATUS_RULES:
        raise BenchError(f"status_rule {rule!r}: expected one of {', '.join(STATUS_RULES)}")
    if target is None:
        return ""
    if score is None or math.isnan(score):
        return STATUS_FAILED
    goal = target.value
    if score >= goal:
        return STATUS_SOLVED
    if rule == "legend" and goal > 0:
        progress = score / goal
    else:
        progress = progress_from(score, goal, random_return)
    # The tolerance keeps a score exactly on the 80% line (in decimal) Close despite float rounding.
    return STATUS_CLOSE if progress >= CLOSE_PROGRESS - 1e-9 else STATUS_FAILED


def status_label(symbol: str) -> str:
    """Word for a status symbol: ``Solved``, ``Close``, ``Failed``, ``Acceptable``, ..."""
    try:
        return _STATUS_LABELS[symbol.strip()]
    except KeyError:
        raise BenchError(
            f"status: unknown symbol {symbol!r}; expected {STATUS_SOLVED}, {STATUS_CLOSE} or empty"
        ) from None


_LEGEND_WORDS = {"Solved": STATUS_SOLVED, "Close": STATUS_CLOSE, "Failed": STATUS_FAILED}
_LEGEND_PART = re.compile(r"^(.*?)\s*\b(Solved|Close|Failed)\b")


@dataclass(frozen=True)
class Legend:
    """The status symbols a BENCHMARKS.md's ``**Legend**:`` line declares.

    Today's file writes ``✅ Solved | ⚠️ Close (>80%) | ... | Failed | ...`` (Failed is an empty
    cell); older versions wrote ``❌ Failed``. Computed statuses are written with these symbols.
    """

    solved: str = STATUS_SOLVED
    close: str = STATUS_CLOSE
    failed: str = STATUS_FAILED

    def symbol(self, computed: str) -> str:
        """The file's symbol for a computed status (``✅``, ``⚠️`` or empty)."""
        by_status = {STATUS_SOLVED: self.solved, STATUS_CLOSE: self.close}
        by_status[STATUS_FAILED] = self.failed
        return by_status.get(computed, computed)

    def canonical(self, symbol: str) -> str:
        """The computed-status form of one of the file's symbols (others unchanged)."""
        symbol = symbol.strip()
        for mine, computed in (
            (self.solved, STATUS_SOLVED),
            (self.close, STATUS_CLOSE),
            (self.failed, STATUS_FAILED),
        ):
            if symbol == mine:
                return computed
        return symbol


def parse_legend(line: str) -> Legend | None:
    """Read a status ``**Legend**:`` line; None when it declares no Solved/Close/Failed."""
    body = re.sub(r"^\s*\*\*Legend\*\*\s*:\s*", "", line.strip(), count=1)
    found = {}
    for part in body.split("|"):
        match = _LEGEND_PART.match(part.strip())
        if match and match.group(2) not in found:
            found[match.group(2)] = match.group(1).strip()
    if not found:
        return None
    return Legend(
        solved=found.get("Solved", STATUS_SOLVED),
        close=found.get("Close", STATUS_CLOSE),
        failed=found.get("Failed", STATUS_FAILED),
    )
