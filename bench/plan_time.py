"""Planning cost: `snakemake -n` over SLM-Lab's whole benchmark vs a trivial Snakefile.

Builds an SLM-Lab checkout from tests/fixtures/slm-lab (the real docs/BENCHMARKS.md, 292 rows;
spec files the fixtures lack are stand-ins, so that every row plans) and times, side by side in
one run:
  - slm-bench's `snakemake -n` for that checkout (the matrix from BENCHMARKS.md, every spec
    fingerprint, every input, param and resource function, every job's command);
  - `snakemake -n` of two trivial Snakefiles with the same jobs: generated from slm-bench's own
    plan, the same rules with the same output and log files, the same input files (patterns
    where they are patterns, else looked up in a table), but no project code. In the `shell`
    one every rule is `shell: "touch {output}"` (files only: the goal's baseline); in the
    `script` one every rule but install_table runs a `script:` that does nothing (Snakemake
    then reads each job's script source, about 1 s over these jobs).
The difference is the project's own share of planning. CPU time (user + system of the process)
is the measure: on a shared machine wall time mostly measures the neighbours (shown too).
Goal: CPU ratio against the `shell` Snakefile <= 1.25.

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


def trivial_snakefile(jobs: list[dict], folder: Path, scripted: bool) -> Path:
    """A Snakefile with the same jobs as ``jobs`` and no project code (see the module doc):
    ``scripted``, every rule but install_table a no-op ``script:``; else all ``shell:``."""
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
        script = scripted and rule != "install_table"
        action = '    script: "noop.py"' if script else '    shell: "touch {output}"'
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
        from slm_bench.matrix.config import build_matrix, load_config

        matrix = build_matrix(load_config({"checkout": {"root": str(root)}}))
        _, _, listing = dry_run(work, REPO / "Snakefile", quiet=False)
        runs = {"slm-bench": (work, REPO / "Snakefile")}
        for style in ("shell", "script"):
            folder = tmp / f"trivial-{style}"
            folder.mkdir()
            snakefile = trivial_snakefile(parse_jobs(listing), folder, style == "script")
            _, _, trivial_listing = dry_run(folder, snakefile)
            if job_stats(trivial_listing) != job_stats(listing):
                raise SystemExit(
                    f"the trivial plan differs: {job_stats(trivial_listing)} "
                    f"vs {job_stats(listing)}"
                )
            runs[f"trivial {style}"] = (folder, snakefile)

        times = {name: {"wall": [], "cpu": []} for name in runs}
        for _ in range(args.repeat):  # interleaved, so load affects all alike
            for name, (workdir, snakefile) in runs.items():
                wall, cpu, _ = dry_run(workdir, snakefile)
                times[name]["wall"].append(wall)
                times[name]["cpu"].append(cpu)
        jobs = sum(job_stats(listing).values())
        print(
            f"rows planned: {len(matrix.cells)} of 292 ({len(matrix.skipped)} not planned), "
            f"envs: {len(matrix.envs)}, jobs: {jobs} (the same in all)"
        )
        median = {
            name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()
        }
        for name, m in median.items():
            print(
                f"{name:14s} snakemake -n: CPU {m['cpu']:5.2f} s, wall {m['wall']:5.2f} s  "
                f"(median of {args.repeat}; CPU runs: "
                + ", ".join(f"{c:.2f}" for c in times[name]["cpu"])
                + ")"
            )
        ours = median["slm-bench"]
        for style in ("shell", "script"):
            theirs = median[f"trivial {style}"]
            goal = " (goal <= 1.25)" if style == "shell" else ""
            print(
                f"ratio vs trivial {style}{goal}: CPU {ours['cpu'] / theirs['cpu']:.2f}; "
                f"wall {ours['wall'] / theirs['wall']:.2f}"
            )


if __name__ == "__main__":
    main()
