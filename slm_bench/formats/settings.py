"""BENCHMARKS.md Settings lines and reward targets.

A Settings line fixes the four values every run of an environment must use::

    **Settings**: max_frame 2e5 | num_envs 4 | max_session 4 | log_frequency 500

Numbers are written in SLM-Lab's loose notation (``2e5``, ``10e6``, ``1e4``, ``10000``, ``100M``)
and ``max_frame`` may be a range (``4e6-10e6``) on a phase-level line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from slm_bench.errors import BenchError

SETTINGS_FIELDS = ("max_frame", "num_envs", "max_session", "log_frequency")

_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9}
_NUMBER = re.compile(r"^([0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?)([kmb]?)$", re.IGNORECASE)
# Largest power of ten used when formatting: 10000000 is written 10e6 as in BENCHMARKS.md.
_MAX_FORMAT_EXPONENT = 6


class Frames(int):
    """A whole number of frames: ``max_frame``'s one type from the config to the runner.

    SLM-Lab's budgets are whole numbers written loosely (``2e5``, ``10e6``, ``200000``); an int
    holds each exactly. ``str()`` is the ``-s max_frame=`` text (``200000``: SLM-Lab
    substitutes it into the spec as a bare integer); ``notation`` is how a Settings line
    writes it (``2e5``).
    """

    @property
    def notation(self) -> str:
        return format_number(self)

    # repr and str stay int's: params, JSON and error lines show the same digits as before.


def parse_number(text: str | int | float, what: str = "number") -> int:
    """Parse a whole non-negative number in SLM-Lab notation: ``2e5``, ``10e6``, ``100M``."""
    if isinstance(text, bool):
        raise BenchError(f"{what}: expected a whole number, got {text!r}")
    if isinstance(text, int):
        value: float = text
    elif isinstance(text, float):
        value = text
    else:
        match = _NUMBER.match(str(text).strip().replace("_", ""))
        if not match:
            raise BenchError(f"{what}: expected a number like 2e5, 10000 or 100M, got {text!r}")
        value = float(match.group(1)) * _SUFFIXES.get(match.group(2).lower(), 1)
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise BenchError(f"{what}: expected a whole non-negative number, got {text!r}")
    return int(value)


def format_number(n: int) -> str:
    """Write ``n`` compactly, the way BENCHMARKS.md does.

    Rule: below 100000 a number is written in full (``500``, ``10000``); from 100000 up, trailing
    zeros become an exponent with an integer mantissa, using the largest exponent up to 6 that
    divides the number (200000 -> ``2e5``, 10000000 -> ``10e6``, 1500000 -> ``15e5``,
    250000 -> ``25e4``). ``parse_number(format_number(n)) == n`` always holds.
    """
    if n < 100_000:
        return str(n)
    for exponent in range(_MAX_FORMAT_EXPONENT, 0, -1):
        if n % 10**exponent == 0:
            return f"{n // 10**exponent}e{exponent}"
    return str(n)


@dataclass(frozen=True)
class Range:
    """An inclusive ``low-high`` range of frame budgets (``4e6-10e6``)."""

    low: Frames
    high: Frames

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{format_number(self.low)}-{format_number(self.high)}"


def _parse_value(key: str, value: object, source: str) -> int | Range | None:
    """A Settings field's number (max_frame's may be a Range: see _parse_frames)."""
    what = f"{source}: {key}" if source else key
    if value is None:
        return None
    if isinstance(value, Range):
        return value
    if key == "max_frame" and isinstance(value, str) and "-" in value.strip():
        low_text, _, high_text = value.strip().partition("-")
        low, high = Frames(parse_number(low_text, what)), Frames(parse_number(high_text, what))
        if low < 1:
            raise BenchError(f"{what}: range {value!r} starts below 1 frame")
        if low > high:
            raise BenchError(f"{what}: range {value!r} has its low end above its high end")
        return Range(low, high)
    if not isinstance(value, int | float | str):
        raise BenchError(f"{what}: expected a number like 2e5, got {value!r}")
    number = parse_number(value, what)
    if number < 1:  # no run has zero frames, envs, sessions or a zero log interval
        raise BenchError(f"{what}: expected at least 1, got {value!r}")
    return number


def _parse_frames(value: object, source: str) -> Frames | Range | None:
    """``max_frame``'s value: ``Frames``, or a Range of them."""
    parsed = _parse_value("max_frame", value, source)
    return Frames(parsed) if isinstance(parsed, int) else parsed


def _format_value(value: int | Range) -> str:
    return str(value) if isinstance(value, Range) else format_number(value)


@dataclass(frozen=True)
class Settings:
    """The four values a Settings line fixes; ``None`` means the line does not say."""

    max_frame: Frames | Range | None = None
    num_envs: int | None = None
    max_session: int | None = None
    log_frequency: int | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], source: str = "") -> Settings:
        """Build from the four fields (int, float or notation string); missing ones are None."""
        where = f"{source}: " if source else ""
        unknown = sorted(set(data) - set(SETTINGS_FIELDS))
        if unknown:
            raise BenchError(
                f"{where}unknown Settings field {unknown[0]!r}; "
                f"expected only {', '.join(SETTINGS_FIELDS)}"
            )
        max_frame = _parse_frames(data.get("max_frame"), source)
        counts = {key: _parse_value(key, data.get(key), source) for key in SETTINGS_FIELDS[1:]}
        numbers: dict[str, int | None] = {}
        for key, value in counts.items():
            if isinstance(value, Range):
                raise BenchError(f"{where}{key}: only max_frame may be a range")
            numbers[key] = value
        return cls(max_frame, **numbers)

    def as_dict(self) -> dict[str, int | Range | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def mismatches(self, spec_values: Mapping[str, object]) -> list[str]:
        """One message per field where ``spec_values`` disagrees with this line.

        A field this line leaves out (``None``) matches anything; a value inside a Range matches.
        """
        problems = []
        for key, expected in self.as_dict().items():
            if expected is None:
                continue
            actual = spec_values.get(key)
            matches = actual in expected if isinstance(expected, Range) else actual == expected
            if not matches:
                shown = "no value" if actual is None else actual
                problems.append(
                    f"{key}: spec has {shown}, Settings line says {_format_value(expected)}"
                )
        return problems

    def with_budget(self, frames: object, source: str = "") -> Settings:
        """These Settings for a row that runs on its own documented frame budget.

        The line's max_frame is the upper limit (SLM-Lab's practice: off-policy algorithms run on
        smaller, documented budgets); a budget above it is an error.
        """
        where = f"{source}: " if source else ""
        budget = _parse_frames(frames, source or "max_frame")
        if isinstance(budget, Range) or budget is None:
            raise BenchError(f"{where}a frame budget must be one number, got {frames!r}")
        limit = self.max_frame.high if isinstance(self.max_frame, Range) else self.max_frame
        if self.max_frame is not None and limit is not None and budget > limit:
            raise BenchError(
                f"{where}frame budget {format_number(budget)} is above the Settings max_frame "
                f"{_format_value(self.max_frame)} (expected at most the Settings line)"
            )
        return replace(self, max_frame=budget)

    def line(self) -> str:
        """Render as in BENCHMARKS.md (``max_frame 2e5 | num_envs 4 | ...``), skipping None."""
        return " | ".join(
            f"{key} {_format_value(value)}"
            for key, value in self.as_dict().items()
            if value is not None
        )


_SETTINGS_PREFIX = re.compile(r"^\s*\*\*Settings\*\*\s*:\s*")


def parse_settings_line(line: str, source: str = "") -> Settings:
    """Parse ``**Settings**: max_frame 2e5 | num_envs 4 | ...`` or just the part after the colon."""
    where = f"{source}: Settings line" if source else "Settings line"
    body = _SETTINGS_PREFIX.sub("", line.strip(), count=1)
    values: dict[str, str] = {}
    for part in body.split("|"):
        key, _, value = part.strip().partition(" ")
        if not key:
            continue
        if key not in SETTINGS_FIELDS or not value.strip():
            raise BenchError(
                f"{where}: cannot read {part.strip()!r}; expected 'FIELD VALUE' with FIELD one of "
                f"{', '.join(SETTINGS_FIELDS)}"
            )
        if key in values:
            raise BenchError(f"{where}: {key} appears twice")
        values[key] = value.strip()
    if not values:
        raise BenchError(f"{where}: no fields in {line.strip()!r}")
    return Settings.from_mapping(values, where)


@dataclass(frozen=True)
class Target:
    """A reward target, ``>`` (exceed) or ``~`` (about); either is reached at ``value``."""

    op: str
    value: float

    @property
    def text(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.op} {value}"


_TARGET_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"
_BARE_TARGET = re.compile(rf"^\s*([>~])\s*{_TARGET_NUMBER}\s*$", re.IGNORECASE)
# In a Docs line the target follows the word "Target", e.g. "Target reward MA > 400".
_DOCS_TARGET = re.compile(rf"Target\b[^|>~]*?([>~])\s*{_TARGET_NUMBER}", re.IGNORECASE)


def parse_target(text: str | None) -> Target | None:
    """Read ``> 400``, ``~ 2000``, ``~1000``, ``> -100`` or a whole Docs line; None when absent."""
    if not text:
        return None
    match = _BARE_TARGET.match(text) or _DOCS_TARGET.search(text)
    if not match:
        return None
    return Target(match.group(1), float(match.group(2)))
