"""A real SLM-Lab checkout as the benchmark's source of truth.

Pointed at a checkout, slm-bench derives its matrix from the checkout's own docs/BENCHMARKS.md:
every env section (Settings, target) and every result row (algorithm, SPEC_FILE, SPEC_NAME, plus
``-s env=...`` when the spec is shared across envs). Rows whose spec cannot be found or resolved
are listed with the reason instead of breaking the plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from slm_bench.errors import BenchError
from slm_bench.settings import Range, parse_settings_line
from slm_bench.spec import locate_spec_file, placeholders, raw_spec
from slm_bench.table import BenchmarksDoc

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


@dataclass(frozen=True)
class SkippedRow:
    env_id: str
    algorithm: str
    spec_file: str
    spec_name: str
    reason: str

    def line(self) -> str:
        return (
            f"{self.env_id} | {self.algorithm} | {self.spec_file} {self.spec_name}: {self.reason}"
        )


def _phase_matches(phase: str | None, wanted: list[str]) -> bool:
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
    key = _UNSAFE.sub("-", spec_name).strip("-") or "row"
    candidate, suffix = key, 2
    while candidate in taken:
        candidate, suffix = f"{key}-{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def read_checkout_benchmarks(checkout: dict) -> BenchmarksDoc:
    path = Path(checkout["root"]) / checkout["benchmarks"]
    if not path.is_file():
        raise BenchError(f"config.yaml: checkout.benchmarks: {path} not found")
    return BenchmarksDoc.read(path)


def derive_envs(checkout: dict) -> tuple[dict, list[SkippedRow]]:
    """The ``envs`` config the checkout's BENCHMARKS.md declares, and the rows left out (why)."""
    root = Path(checkout["root"])
    doc = read_checkout_benchmarks(checkout)
    wanted_envs = set(checkout.get("envs") or [])
    envs: dict[str, dict] = {}
    skipped: list[SkippedRow] = []
    for section in doc.env_sections():
        if wanted_envs and section.env_id not in wanted_envs:
            continue
        if not _phase_matches(section.phase, checkout.get("phases") or []):
            continue

        def skip(row, reason, section=section):
            skipped.append(
                SkippedRow(section.env_id, row.algorithm, row.spec_file, row.spec_name, reason)
            )

        settings = parse_settings_line(section.settings_line) if section.settings_line else None
        algorithms: dict[str, dict] = {}
        taken: set[str] = set()
        for row in section.rows:
            if settings is None:
                skip(row, "the env has no Settings line")
                continue
            if isinstance(settings.max_frame, Range) or settings.max_frame is None:
                skip(row, f"Settings max_frame is not one value ({settings.line()})")
                continue
            if not row.spec_file or not row.spec_name:
                skip(row, "the row names no SPEC_FILE/SPEC_NAME")
                continue
            path = locate_spec_file(row.spec_file, root)
            if not path.is_file():
                skip(row, f"spec file not found: {path}")
                continue
            try:
                # A cheap check per row (the file is parsed once): the name exists and every
                # placeholder is filled. Full resolution and validation is the cell's first job.
                body = raw_spec(path, row.spec_name)
            except BenchError as error:
                skip(row, str(error))
                continue
            # SLM-Lab's runs of a file shared across envs pass `-s env=...` for every spec in
            # it (the data folder then ends in `_{envshort}`), even one that names its env.
            sets = {"env": section.env_id} if "${env}" in path.read_text(errors="replace") else {}
            unfilled = placeholders(body) - set(sets) - {"max_frame"}
            if unfilled:
                names = ", ".join(f"${{{key}}}" for key in sorted(unfilled))
                skip(row, f"{row.spec_file}: {row.spec_name}: {names} has no value to fill it")
                continue
            algorithms[_algo_key(row.spec_name, taken)] = {
                "label": row.algorithm,
                "spec_file": row.spec_file,
                "spec_name": row.spec_name,
                "sets": sets,
            }
        if algorithms:
            envs[section.env_id] = {
                "settings": settings,
                "target": section.target,
                "phase": section.phase,
                "docs_line": section.docs_line,
                "algorithms": algorithms,
            }
    return envs, skipped


# -- writing back to the checkout (opt-in targets) -------------------------------------------


def _require_checkout(config: dict) -> dict:
    if not config.get("checkout"):
        raise BenchError("config.yaml: checkout: this target needs a checkout (checkout.root)")
    return config["checkout"]


def update_docs(config: dict, table: Path, plots: list[Path]) -> dict:
    """Copy the updated BENCHMARKS.md and the plots into the checkout's docs/ (in place)."""
    import shutil

    from slm_bench.atomic import write_text

    checkout = _require_checkout(config)
    root = Path(checkout["root"])
    doc_path = root / checkout["benchmarks"]
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


def commit_docs(config: dict, updated: dict, rows: list[dict]) -> dict:
    """Commit BENCHMARKS.md, the plots and the rows' spec files to the checkout's git, locally.

    Only those paths are committed (``git commit -- PATHS``), whatever else is staged. Nothing
    here, or anywhere in slm-bench, pushes.
    """
    import subprocess

    checkout = _require_checkout(config)
    root = Path(checkout["root"])
    specs = sorted({locate_spec_file(row["spec_file"], root) for row in rows})
    paths = [updated["benchmarks"], *updated["plots"], *(str(p.relative_to(root)) for p in specs)]

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    if git("rev-parse", "--git-dir").returncode != 0:
        raise BenchError(f"config.yaml: checkout.root: {root} is not a git repository")
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
