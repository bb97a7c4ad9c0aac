"""Reading an SLM-Lab spec body for the embedded runner: typed values and variable schedules.

Every error names the spec and the field (``{spec_file}: {spec_name}: {path}: {expected}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slm_bench.errors import BenchError

DECAYS = ("no_decay", "linear_decay", "rate_decay")


@dataclass(frozen=True)
class Decay:
    """An SLM-Lab variable schedule (``*_spec`` with name, start/end values and steps).

    ``step`` is the env frame, as SLM-Lab's VarScheduler uses it. The formulas are SLM-Lab's
    math_util.no_decay / linear_decay / rate_decay (rate: 20 compounding 0.9 decays).
    """

    name: str
    start_val: float
    end_val: float
    start_step: float = 0
    end_step: float = 0

    def value(self, step: float) -> float:
        if self.name == "no_decay" or step < self.start_step:
            return self.start_val
        if step >= self.end_step:  # also guards a zero-length schedule
            return self.end_val
        if self.name == "linear_decay":
            slope = (self.end_val - self.start_val) / (self.end_step - self.start_step)
            return max(slope * (step - self.start_step) + self.start_val, self.end_val)
        step_per_decay = (self.end_step - self.start_step) / 20.0  # rate_decay
        return max(
            0.9 ** ((step - self.start_step) / step_per_decay) * self.start_val, self.end_val
        )


@dataclass(frozen=True)
class FrameSchedule:
    """An SB3 schedule (a function of progress remaining, 1 -> 0) following a Decay in frames."""

    decay: Decay
    total_frames: int

    def __call__(self, progress_remaining: float) -> float:
        return self.decay.value((1.0 - progress_remaining) * self.total_frames)


def lookup(spec: Mapping, path: str, default: Any = None) -> Any:
    node: Any = spec
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return default if node is None else node


class SpecReader:
    """Typed access to a spec body; every error names the spec and the field."""

    def __init__(self, spec: Mapping, where: str):
        self.spec = spec
        self.where = where

    def error(self, path: str, expected: str) -> BenchError:
        return BenchError(f"{self.where}: {path}: {expected}")

    def get(self, path: str, default: Any = None) -> Any:
        return lookup(self.spec, path, default)

    def number(self, path: str, default: float | None = None) -> float:
        value = self.get(path, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, f"expected a number, got {value!r}")
        return float(value)

    def integer(self, path: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.get(path, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(path, f"expected a whole number >= {minimum}, got {value!r}")
        return value

    def decay(self, path: str) -> Decay | None:
        block = self.get(path)
        if block is None:
            return None
        if not isinstance(block, Mapping):
            raise self.error(path, f"expected a schedule mapping, got {block!r}")
        name = block.get("name", "no_decay")
        if name not in DECAYS:
            raise self.error(f"{path}.name", f"expected one of {', '.join(DECAYS)}, got {name!r}")
        start = self.number(f"{path}.start_val")
        # SLM-Lab's VarScheduler: `if not end_val: end_val = start_val`, so an end_val of 0
        # keeps the start value for the whole run (a linear_decay 0.01 -> 0.0 stays at 0.01)
        end = self.number(f"{path}.end_val", start) or start
        return Decay(
            name=name,
            start_val=start,
            end_val=end,
            start_step=self.number(f"{path}.start_step", 0),
            end_step=self.number(f"{path}.end_step", 0),
        )


def scheduled(decay: Decay, max_frame: int) -> float | FrameSchedule:
    """A constant where the schedule is constant, else an SB3 schedule over the run's frames."""
    if decay.name == "no_decay" or decay.start_val == decay.end_val:
        return decay.start_val
    return FrameSchedule(decay, max_frame)
