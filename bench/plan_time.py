"""Planning cost: `snakemake -n` over SLM-Lab's whole benchmark vs a trivial Snakefile.

Builds an SLM-Lab checkout from tests/fixtures/slm-lab (the real docs/BENCHMARKS.md, 292 rows;
spec files the fixtures lack are stand-ins, so that every row plans) and times, side by side in
one run:
  - slm-bench's `snakemake -n` for that checkout (the matrix from BENCHMARKS.md, every spec
    fingerprint, every input, param and resource function);
  - `snakemake -n` of a trivial Snakefile with the same jobs: generated from slm-bench's own plan,
    the same rules with the same output and log files, the same input files (patterns where
    they are patterns, else looked up in a table) and the same kind of action (a `script:` that
    does nothing where slm-bench's rule has a script), but no project code.
The difference is the project's own share of planning. CPU time (user + system of the process)
is the measure: on a shared machine wall time mostly measures the neighbours (shown too).
Goal: ratio <= 1.25.

    python bench/plan_time.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from slm_lab_checkout import FIXTURES, build_checkout  # noqa: E402

JOB_HEADER = re.compile(r"^(?:local)?rule (\w+):$")


def dry_run(workdir: Path, snakefile: Path, quiet: bool = True) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one `snakemake -n`."""
    argv = [
        sys.executable, "-m", "snakemake", "-n", "-s", str(snakefile), "-d", str(workdir),
        "--cores", "1", "--workflow-profile", "none", "--profile", "none",
    ] + (["--quiet", "rules"] if quiet else [])  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def job_stats(output: str) -> dict[str, int]:
    lines = output.splitlines()
    start = lines.index("Job stats:") + 3
    stats = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        stats[parts[0]] = int(parts[1])
    return stats


def parse_jobs(output: str) -> list[dict]:
    """Each job of a dry run's listing: rule, input, output, log, wildcards."""
    jobs, job = [], None
    for line in output.splitlines():
        if match := JOB_HEADER.match(line):
            job = {"rule": match.group(1), "input": [], "output": [], "log": [], "wildcards": {}}
            jobs.append(job)
        elif job is not None and line.startswith("    ") and ": " in line:
            key, _, value = line.strip().partition(": ")
            if key in ("input", "output", "log"):
                job[key] = value.split(", ")
            elif key == "wildcards":
                job[key] = dict(item.split("=", 1) for item in value.split(", "))
    return jobs


def _pattern(path: str, wildcards: dict[str, str]) -> str:
    """``path`` with each wildcard value put back as ``{name}`` (longest values first)."""
    pattern = path.replace("{", "{{").replace("}", "}}")
    for name, value in sorted(wildcards.items(), key=lambda item: -len(item[1])):
        pattern = pattern.replace(value, "{" + name + "}")
    return pattern


def _patterns(jobs: list[dict], key: str) -> list[str] | None:
    """One pattern list that formats to every job's ``key`` files, or None."""
    candidates = Counter(tuple(_pattern(p, j["wildcards"]) for p in j[key]) for j in jobs)
    patterns = list(candidates.most_common(1)[0][0])
    for job in jobs:
        if [p.format(**job["wildcards"]) for p in patterns] != job[key]:
            return None
    return patterns


def script_rules() -> set[str]:
    """Rules of slm-bench whose action is a `script:`."""
    rules = set()
    for path in (REPO / "rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.M):
            if re.search(r"^    script:", body, re.M):
                rules.add(name)
    return rules


def trivial_snakefile(jobs: list[dict], folder: Path) -> Path:
    """A Snakefile with the same jobs as ``jobs`` and no project code (see the module doc)."""
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for job in jobs:
        by_rule[job["rule"]].append(job)
    values: dict[str, set[str]] = defaultdict(set)
    for job in jobs:
        for name, value in job["wildcards"].items():
            values[name].add(value)
    constraints = {
        name: "[^/]+" if not any("/" in v for v in seen) else "|".join(map(re.escape, seen))
        for name, seen in values.items()
    }
    scripted = script_rules()
    (folder / "noop.py").write_text("")
    lookups: dict[str, dict[str, list[str]]] = {}
    lines = [
        "import json",
        'INPUTS = json.load(open(workflow.basedir + "/inputs.json"))',
        "def inputs_of(rule):",
        '    return lambda w: INPUTS[rule]["|".join(f"{k}={v}" for k, v in sorted(w.items()))]',
        "wildcard_constraints:",
        *[f"    {name}={pattern!r}," for name, pattern in constraints.items()],
    ]
    for rule in ["all", *[r for r in by_rule if r != "all"]]:
        rule_jobs = by_rule[rule]
        inputs = _patterns(rule_jobs, "input")
        if inputs is None:
            lookups[rule] = {
                "|".join(f"{k}={v}" for k, v in sorted(j["wildcards"].items())): j["input"]
                for j in rule_jobs
            }
            input_text = f"inputs_of({rule!r})"
        else:
            input_text = repr(inputs)
        lines += [f"rule {rule}:", f"    input: {input_text}"]
        if rule == "all":
            lines += ["    default_target: True"]
            continue
        lines.append("    output: " + ", ".join(map(repr, _patterns(rule_jobs, "output"))))
        if rule_jobs[0]["log"]:
            lines.append("    log: " + ", ".join(map(repr, _patterns(rule_jobs, "log"))))
        action = '    script: "noop.py"' if rule in scripted else '    shell: "touch {output}"'
        lines.append(action)
    (folder / "inputs.json").write_text(json.dumps(lookups))
    snakefile = folder / "Snakefile"
    snakefile.write_text("\n".join(lines) + "\n")
    return snakefile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"{FIXTURES} is absent: this benchmark needs the SLM-Lab fixtures")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = build_checkout(tmp / "SLM-Lab")
        work = tmp / "work"
        work.mkdir()
        (work / "config.yaml").write_text(yaml.safe_dump({"checkout": {"root": str(root)}}))
        from slm_bench.config import build_matrix, load_config

        matrix = build_matrix(load_config({"checkout": {"root": str(root)}}))
        _, _, listing = dry_run(work, REPO / "Snakefile", quiet=False)
        trivial_dir = tmp / "trivial"
        trivial_dir.mkdir()
        trivial = trivial_snakefile(parse_jobs(listing), trivial_dir)
        _, _, trivial_listing = dry_run(trivial_dir, trivial)
        if job_stats(trivial_listing) != job_stats(listing):
            raise SystemExit(
                f"the trivial plan differs: {job_stats(trivial_listing)} vs {job_stats(listing)}"
            )

        ours: dict[str, list[float]] = {"wall": [], "cpu": []}
        theirs: dict[str, list[float]] = {"wall": [], "cpu": []}
        for _ in range(args.repeat):  # interleaved, so load affects both alike
            for times, (workdir, snakefile) in (
                (ours, (work, REPO / "Snakefile")),
                (theirs, (trivial_dir, trivial)),
            ):
                wall, cpu, _ = dry_run(workdir, snakefile)
                times["wall"].append(wall)
                times["cpu"].append(cpu)
        jobs = sum(job_stats(listing).values())
        print(
            f"rows planned: {len(matrix.cells)} of 292 ({len(matrix.skipped)} not planned), "
            f"envs: {len(matrix.envs)}, jobs: {jobs} (the same in both)"
        )
        for name, times in (("slm-bench", ours), ("trivial", theirs)):
            print(
                f"{name:10s} snakemake -n: CPU {statistics.median(times['cpu']):5.2f} s, "
                f"wall {statistics.median(times['wall']):5.2f} s  (median of {args.repeat})"
            )
        cpu_ratio = statistics.median(ours["cpu"]) / statistics.median(theirs["cpu"])
        wall_ratio = statistics.median(ours["wall"]) / statistics.median(theirs["wall"])
        print(f"ratio CPU (goal <= 1.25): {cpu_ratio:.2f}; wall: {wall_ratio:.2f}")


if __name__ == "__main__":
    main()
