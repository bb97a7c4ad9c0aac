"""A real SLM-Lab checkout as the benchmark's source of truth.

Pointed at a checkout, slm-bench derives its matrix from the checkout's own docs/BENCHMARKS.md:
every env section (Settings, target) and every result row (algorithm, SPEC_FILE, SPEC_NAME, plus
``-s env=...`` when the spec is shared across envs). Rows whose spec cannot be found or resolved
are listed with the reason instead of breaking the plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slm_bench.config_model import BenchConfig, CheckoutOptions
from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import (
    BUDGET_POLICIES,
    BenchmarksDoc,
    EnvSection,
    FrameBudgets,
    ResultRow,
    read_budgets,
    row_frames,
)
from slm_bench.formats.settings import Range, Settings, parse_settings_line
from slm_bench.formats.spec import locate_spec_file, placeholders, raw_spec

# Characters an algorithm key may not hold (slm_bench.matrix.identifiers.ALGO_KEY): dots included.
_UNSAFE = re.compile(r"[^A-Za-z0-9_+-]+")
_KEY_LENGTH = 90  # ALGO_KEY allows 100 characters: room for a "-N" suffix


@dataclass(frozen=True)
class SkippedRow:
    """A row of the checkout's file that is not planned, and why; with an empty ``env_id``, a
    table whose rows are not read at all (``BenchmarksDoc.warnings``)."""

    env_id: str
    algorithm: str
    spec_file: str
    spec_name: str
    reason: str

    @property
    def is_table_warning(self) -> bool:
        """A whole table the index cannot read (a warning with its line number), not one row."""
        return not self.env_id

    def line(self) -> str:
        if self.is_table_warning:
            return self.reason
        return (
            f"{self.env_id} | {self.algorithm} | {self.spec_file} {self.spec_name}: {self.reason}"
        )


def _phase_matches(phase: str | None, wanted: Sequence[str | int]) -> bool:
    """``Phase 1: Classic Control`` matches "1", "Phase 1", "Classic Control" or the full title."""
    if not wanted:
        return True
    if phase is None:
        return False
    number = re.match(r"Phase\s+([\d.]+)", phase)
    title = phase.split(":", 1)[-1].strip().lower()
    for item in wanted:
        item = str(item).strip()
        if item.lower() in (phase.lower(), title) or (
            number and item in (number.group(1), f"Phase {number.group(1)}")
        ):
            return True
    return False


def _algo_key(spec_name: str, taken: set[str]) -> str:
    """A folder name for the row (``results/{env}/{key}``), unique among ``taken``."""
    # ALGO_KEY starts with a letter or digit: a spec name such as "_x" or "a.b" is made one.
    key = _UNSAFE.sub("-", spec_name)[:_KEY_LENGTH].lstrip("_+-").rstrip("-") or "row"
    candidate, suffix = key, 2
    while candidate in taken:
        candidate, suffix = f"{key}-{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def read_checkout_benchmarks(
    checkout: CheckoutOptions, source: ConfigSource = DEFAULT_SOURCE
) -> BenchmarksDoc:
    """The checkout's BENCHMARKS.md; ``source`` names the config in the error line."""
    path = checkout.benchmarks_path
    if not path.is_file():
        raise BenchError(f"{source.where('checkout', 'benchmarks')}: {path} not found")
    return BenchmarksDoc.read(path)


def _hardcoded_frames(body: dict) -> int | None:
    """The max_frame a raw spec writes as a number (None: a ``${max_frame}`` placeholder)."""
    value = (body.get("env") or {}).get("max_frame") if isinstance(body, dict) else None
    if isinstance(value, str):  # YAML reads a bare 2e6 as text; SLM-Lab's specs write 2000000
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() and value > 0 else None


class _EnvRows:
    """Turns one env's rows into config ``algorithms`` entries, or skipped rows with a reason."""

    def __init__(
        self,
        root: Path,
        env_id: str,
        settings: Settings | None,
        budgets: FrameBudgets,
        policy: str,
        skipped: list[SkippedRow],
    ) -> None:
        self.root, self.env_id, self.settings = root, env_id, settings
        self.budgets, self.policy, self.skipped = budgets, policy, skipped
        self.algorithms: dict[str, dict] = {}
        self.taken: set[str] = set()

    def skip(self, row: ResultRow, reason: str) -> None:
        self.skipped.append(
            SkippedRow(self.env_id, row.algorithm, row.spec_file, row.spec_name, reason)
        )

    def add(self, row: ResultRow, phase: str | None) -> None:
        settings = self.settings
        if settings is None:
            return self.skip(row, "the env has no Settings line")
        if settings.max_frame is None:
            return self.skip(row, f"Settings line has no max_frame ({settings.line()})")
        if not row.spec_file or not row.spec_name:
            return self.skip(row, "the row names no SPEC_FILE/SPEC_NAME")
        path = locate_spec_file(row.spec_file, self.root)
        if not path.is_file():
            return self.skip(row, f"spec file not found: {path}")
        try:
            # A cheap check per row (the file is parsed once): the name exists and every
            # placeholder is filled. Full resolution and validation is the cell's first job.
            body = raw_spec(path, row.spec_name)
        except BenchError as error:
            return self.skip(row, str(error))
        # SLM-Lab's reproduce commands pass `-s env=ENV` (the data folder then ends in
        # `_{envshort}`) for the specs of a file shared across envs that take values from `-s`,
        # and no flags for specs that hard-code env and max_frame ("no -s flags needed"): this
        # rule gives 225 of the 292 real rows' folder names, the other 67 were renamed by hand.
        shared = "${env}" in path.read_text(errors="replace")
        sets = {"env": self.env_id} if shared and placeholders(body) else {}
        unfilled = placeholders(body) - set(sets) - {"max_frame"}
        if unfilled:
            names = ", ".join(f"${{{key}}}" for key in sorted(unfilled))
            reason = f"{row.spec_file}: {row.spec_name}: {names} has no value to fill it"
            return self.skip(row, reason)
        budget = self.budgets.find(self.env_id, phase, row.algorithm, row.spec_name)
        try:
            frames = row_frames(budget, settings.max_frame, _hardcoded_frames(body), self.policy)
        except BenchError as error:
            return self.skip(row, str(error))
        if frames is None and isinstance(settings.max_frame, Range):
            return self.skip(
                row,
                f"Settings max_frame is a range ({settings.line()}) and the file documents no "
                "frame budget for this row",
            )
        entry: dict[str, object] = {
            "label": row.algorithm,
            "spec_file": row.spec_file,
            "spec_name": row.spec_name,
            "sets": sets,
        }
        if frames is not None:
            entry["max_frame"] = frames  # the row's documented budget: -s max_frame=frames
        self.algorithms[_algo_key(row.spec_name, self.taken)] = entry


def settings_line_number(doc: BenchmarksDoc, section: EnvSection) -> int | None:
    """The 1-based line of the section's Settings line: its own, else the nearest above it
    (a phase's or sub-phase's line that the section inherits)."""
    if section.settings_line is None:
        return None
    own = range(section.start, section.end)
    above = range(section.start - 1, -1, -1)
    for index in (*own, *above):
        if doc.line(index) == section.settings_line and not doc.is_fenced(index):
            return index + 1
    return None


def _env_settings(doc: BenchmarksDoc, section: EnvSection) -> Settings | None:
    """The env's Settings, or None without a line; a line that cannot be read is a BenchError
    naming the file, the line and the env."""
    if not section.settings_line:
        return None
    where = f"{doc.source} line {settings_line_number(doc, section)}: {section.env_id}"
    return parse_settings_line(section.settings_line, where)


def derive_envs(
    checkout: CheckoutOptions, source: ConfigSource = DEFAULT_SOURCE
) -> tuple[dict, list[SkippedRow]]:
    """The ``envs`` config the checkout's BENCHMARKS.md declares, and the rows left out (why).

    A row with a documented frame budget (``slm_bench.formats.benchmarks_md.budgets``) gets
    ``max_frame``: it runs with ``-s max_frame=BUDGET`` and its spec is audited against the
    budget. Tables that look like results but are not read come first in the skipped list, as
    one line each.
    """
    root = Path(checkout.root)
    doc = read_checkout_benchmarks(checkout, source)
    budgets = read_budgets(doc)
    policy = _budget_policy(checkout, source)
    wanted_envs = set(checkout.envs)
    skipped = [SkippedRow("", "", "", "", warning) for warning in doc.warnings()]
    envs: dict[str, dict] = {}
    for env_id, sections in _sections_by_env(doc).items():
        first = sections[0]
        if wanted_envs and env_id not in wanted_envs:
            continue
        if not _phase_matches(first.phase, checkout.phases):
            continue
        rows = _EnvRows(root, env_id, None, budgets, policy, skipped)
        _read_env_rows(doc, sections, rows, required=env_id in wanted_envs)
        if rows.algorithms:
            envs[env_id] = {
                "settings": rows.settings,
                "target": first.target,
                "phase": first.phase,
                "docs_line": first.docs_line,
                "algorithms": rows.algorithms,
            }
    return envs, skipped


def _budget_policy(checkout: CheckoutOptions, source: ConfigSource) -> str:
    policy = checkout.frame_budgets
    if policy not in BUDGET_POLICIES:
        raise BenchError(
            f"{source.where('checkout', 'frame_budgets')}: {policy!r} is not one of "
            f"{', '.join(BUDGET_POLICIES)}"
        )
    return policy


def _sections_by_env(doc: BenchmarksDoc) -> dict[str, list[EnvSection]]:
    """Each env's sections in document order (an env split over several shared tables has
    one per table); rows without an env are in ``doc.warnings()``."""
    by_env: dict[str, list[EnvSection]] = {}
    for section in doc.env_sections():
        if section.env_id:
            by_env.setdefault(section.env_id, []).append(section)
    return by_env


def _read_env_rows(
    doc: BenchmarksDoc, sections: list[EnvSection], rows: _EnvRows, required: bool
) -> None:
    """Add an env's rows (its first section's Settings apply): every row is skipped, with the
    reason, when that Settings line cannot be read (an error when the config names the env), and
    a row of a table with other Settings is skipped."""
    first = sections[0]
    unreadable: str | None = None
    try:
        rows.settings = _env_settings(doc, first)
    except BenchError as error:
        if required:  # the config names this env: it cannot be left out
            raise
        unreadable = str(error)
    for section in sections:  # an env split over several shared tables (one per algorithm)
        same = section.settings_line == first.settings_line
        for row in section.rows:
            if unreadable:
                rows.skip(row, unreadable)
            elif same:
                rows.add(row, section.phase)
            else:
                where = f"line {first.start + 1}"
                rows.skip(row, f"Settings differ from the env's first table ({where})")


# -- writing back to the checkout (opt-in targets) -------------------------------------------


def _require_checkout(config: BenchConfig) -> CheckoutOptions:
    if config.checkout is None:
        raise BenchError(
            f"{config.where('checkout')}: this target needs a checkout (checkout.root)"
        )
    return config.checkout


def update_docs(config: BenchConfig, table: Path, plots: list[Path]) -> dict:
    """Copy the updated BENCHMARKS.md and the plots into the checkout's docs/ (in place)."""
    import shutil

    from slm_bench.atomic import write_text

    checkout = _require_checkout(config)
    root = Path(checkout.root)
    doc_path = checkout.benchmarks_path
    plots_dir = doc_path.parent / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for plot in map(Path, plots):
        target = plots_dir / plot.name
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(plot, tmp)
        tmp.replace(target)
        copied.append(str(target.relative_to(root)))
    write_text(doc_path, Path(table).read_text(encoding="utf-8"))
    return {"benchmarks": str(doc_path.relative_to(root)), "plots": copied}


def commit_message(rows: list[dict]) -> str:
    """``docs: update CartPole-v1 benchmark (PPO 498.94)``, SLM-Lab's style."""
    envs = list(dict.fromkeys(row["env_id"] for row in rows))
    scores = ", ".join(f"{row['algorithm']} {row['ma']:.2f}" for row in rows)
    noun = "benchmark" if len(envs) == 1 else "benchmarks"
    return f"docs: update {', '.join(envs)} {noun} ({scores})"


def commit_docs(config: BenchConfig, updated: dict, rows: list[dict]) -> dict:
    """Commit BENCHMARKS.md, the plots and the rows' spec files to the checkout's git, locally.

    Only those paths are committed (``git commit -- PATHS``), whatever else is staged. Nothing
    here, or anywhere in slm-bench, pushes.
    """
    import subprocess

    root = Path(_require_checkout(config).root)
    specs = sorted({locate_spec_file(row["spec_file"], root) for row in rows})
    paths = [updated["benchmarks"], *updated["plots"], *(str(p.relative_to(root)) for p in specs)]

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    if git("rev-parse", "--git-dir").returncode != 0:
        where = config.where("checkout", "root")
        raise BenchError(f"{where}: {root} is not a git repository")
    added = git("add", "--", *paths)
    if added.returncode != 0:
        raise BenchError(f"{root}: git add failed: {added.stderr.strip().splitlines()[-1]}")
    if git("diff", "--cached", "--quiet", "--", *paths).returncode == 0:
        return {"committed": False, "reason": "nothing changed", "paths": paths}
    message = commit_message(rows)
    committed = git("commit", "-m", message, "--", *paths)
    if committed.returncode != 0:
        raise BenchError(
            f"{root}: git commit failed: {committed.stderr.strip() or committed.stdout.strip()}"
        )
    sha = git("rev-parse", "HEAD").stdout.strip()
    return {"committed": True, "commit": sha, "message": message, "paths": paths}
