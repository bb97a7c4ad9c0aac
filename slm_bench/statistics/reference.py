"""A comparison's reference: a BENCHMARKS.md or an earlier ``results/`` folder, read strictly.

A reference either reads as what it claims to be or is refused with one line naming the file
(and the line): a file with no result table, an MA that is not a finite number, two rows for one
cell, or a path that is neither a regular file nor a folder. Only then can "no reference" mean
what it says: a valid reference that has no row for the cell. A row whose MA cell says it has no
result (empty, ``-``, ``N/A``: not tested) is no result, not an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc
from slm_bench.formats.benchmarks_md.rows import MA_MARKERS
from slm_bench.formats.run_folder import load_json

_NO_RESULT = ("", "-", "—", "N/A", "n/a")
# What may surround the number in an MA cell: SLM-Lab's bold best score, its approximate ``~``,
# and a status symbol written into the cell (``❌ 327.79`` in tables without a Status column).
_DECORATION = re.compile(
    rf"^(?:\*\*)?\s*(?:{'|'.join(MA_MARKERS)})?\s*~?(?P<number>[^*]*?)(?:\*\*)?$"
)


@dataclass(frozen=True)
class ReferenceEntry:
    """One reference result: its MA, and its sessions' MAs when the reference has them."""

    env_id: str
    algorithm: str
    spec_name: str
    ma: float
    sessions: tuple[float, ...] = ()
    source: str = ""  # the file's name, or the results cell (env/algo), the entry came from
    line: int | None = None  # its line in the file, for a BENCHMARKS.md row

    def where(self, reference: Path) -> str:
        """The entry's place for an error line: the reference file and line, or the cell."""
        return f"{reference} line {self.line}" if self.line else f"{reference}/{self.source}"


def parse_ma(text: str, where: str) -> float | None:
    """An MA cell's value: None when the cell says there is no result, else a finite number."""
    text = str(text).strip()
    if text in _NO_RESULT:
        return None
    match = _DECORATION.match(text)
    number = match.group("number").replace(",", "").strip() if match else text
    try:
        value = float(number)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise BenchError(
            f"{where}: MA {text!r}: expected a finite number such as 498.94 (or '-' for no result)"
        )
    return value


def read_reference(path: str | Path) -> list[ReferenceEntry]:
    """Every result of a reference: a BENCHMARKS.md file, or an earlier ``results/`` folder."""
    path = Path(path)
    if path.is_file():
        entries = _from_benchmarks(path)
    elif path.is_dir():
        entries = _from_results(path)
    elif path.exists():
        raise BenchError(
            f"{path}: compare reference is not a regular file or a folder"
            " (expected a BENCHMARKS.md or results/)"
        )
    else:
        raise BenchError(
            f"{path}: compare reference not found (expected a BENCHMARKS.md or results/)"
        )
    _check_one_row_per_cell(entries, path)
    return entries


def _from_benchmarks(path: Path) -> list[ReferenceEntry]:
    doc = BenchmarksDoc.read(path)
    sections = [s for s in doc.env_sections() if s.rows]
    if not sections:
        raise BenchError(
            f"{path}: compare reference has no result table (expected a BENCHMARKS.md with"
            " '#### ENV' sections of | Algorithm | Status | MA | ... | rows)"
        )
    entries = []
    for section in sections:
        for line, row in zip(section.row_lines, section.rows, strict=True):
            where = f"{path} line {line + 1}"
            ma = parse_ma(row.ma, where)
            if ma is not None:
                entries.append(
                    ReferenceEntry(
                        section.env_id, row.algorithm, row.spec_name, ma, (), path.name, line + 1
                    )
                )
    return entries


def _finite(value: object, where: str, field: str) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number):
        raise BenchError(f"{where}: {field}: expected a finite number, got {value!r}")
    return float(number)


def _from_results(root: Path) -> list[ReferenceEntry]:
    entries = []
    for cell_dir in sorted(p for p in root.glob("*/*") if p.is_dir()):
        stats_path, metrics_path = cell_dir / "stats.json", cell_dir / "metrics.json"
        source = f"{cell_dir.parent.name}/{cell_dir.name}"
        if stats_path.is_file():
            stats = _record(stats_path, ("env_id", "algorithm", "sessions", "mean"))
            where = str(stats_path)
            sessions = tuple(
                _finite(s.get("final_ma") if isinstance(s, dict) else s, where, "final_ma")
                for s in stats["sessions"]
            )
            ma = stats.get("trial_ma") if stats.get("trial_ma") is not None else stats["mean"]
            spec_name = _record(metrics_path, ())["spec_name"] if metrics_path.is_file() else ""
            ma = _finite(ma, where, "trial_ma")
            entries.append(
                ReferenceEntry(stats["env_id"], stats["algorithm"], spec_name, ma, sessions, source)
            )
        elif metrics_path.is_file():
            metrics = _record(metrics_path, ("env_id", "algorithm", "spec_name", "total_reward_ma"))
            where = str(metrics_path)
            ma = _finite(metrics["total_reward_ma"], where, "total_reward_ma")
            entries.append(
                ReferenceEntry(
                    metrics["env_id"], metrics["algorithm"], metrics["spec_name"], ma, (), source
                )
            )
    if not entries:
        raise BenchError(f"{root}: no {{env}}/{{algo}}/stats.json or metrics.json to compare with")
    return entries


def _record(path: Path, required: tuple[str, ...]) -> dict:
    data = load_json(path)
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a JSON object")
    missing = [key for key in required if key not in data]
    if missing:
        raise BenchError(f"{path}: missing {', '.join(missing)}")
    if "sessions" in required and not isinstance(data["sessions"], list):
        raise BenchError(f"{path}: sessions: expected a list")
    return data


def _check_one_row_per_cell(entries: list[ReferenceEntry], path: Path) -> None:
    """Two results for one env and algorithm label (a table has one row per label in an env)
    make the reference ambiguous: which one a cell is compared with would be a guess."""
    seen: dict[tuple[str, str], ReferenceEntry] = {}
    for entry in entries:
        if not entry.algorithm:
            continue
        first = seen.setdefault((entry.env_id, entry.algorithm), entry)
        if first is not entry:
            raise BenchError(
                f"{entry.where(path)}: compare reference has two rows for {entry.env_id}"
                f" {entry.algorithm} (the other at {first.where(path)}); keep one"
            )


def match_reference(
    entries: list[ReferenceEntry], env_id: str, spec_name: str, algorithm: str
) -> ReferenceEntry | None:
    """The reference row of a cell: same env and spec name, else the env's only row with the same
    algorithm label (the project's own specs are named differently from SLM-Lab's)."""
    in_env = [e for e in entries if e.env_id == env_id]
    same_spec = [e for e in in_env if spec_name and e.spec_name == spec_name]
    if len(same_spec) == 1:
        return same_spec[0]
    same_label = [e for e in in_env if e.algorithm == algorithm]
    return same_label[0] if len(same_label) == 1 else None
