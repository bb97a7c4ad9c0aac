"""Planning cost: `snakemake -n` over the full real SLM-Lab benchmark vs a trivial Snakefile.

Builds a directory laid out like an SLM-Lab checkout from tests/fixtures/slm-lab (the real
docs/BENCHMARKS.md and specs). Spec files the fixtures do not hold are synthesised (one spec
body per missing SPEC_NAME, cloned from a real PPO spec) so that every one of the 292 rows is
planned, then times, side by side in one run:
  - slm-bench's `snakemake -n` for that matrix (every job's input functions, spec fingerprints),
  - `snakemake -n` of a trivial Snakefile with the same number of jobs in the same shape.
Goal: ratio <= 1.5.

    python bench/plan_time.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "slm-lab"
TEMPLATE = ("benchmark/ppo/ppo_cartpole.yaml", "ppo_cartpole")

TRIVIAL = """
N = {cells}
ENVS = {envs}
rule all:
    input: "results/BENCHMARKS.md"
rule table:
    input: expand("results/c{{i}}/row", i=range(N)), expand("results/p{{e}}.png", e=range(ENVS))
    output: "results/BENCHMARKS.md"
    shell: "touch {{output}}"
rule plot:
    input: lambda w: [f"results/c{{i}}/pulled" for i in range(N) if i % ENVS == int(w.e)]
    output: "results/p{{e}}.png"
    shell: "touch {{output}}"
rule spec:
    output: "results/c{{i}}/spec"
    shell: "touch {{output}}"
rule run:
    input: "results/c{{i}}/spec"
    output: "results/c{{i}}/run"
    shell: "touch {{output}}"
rule metrics:
    input: "results/c{{i}}/run"
    output: "results/c{{i}}/metrics"
    shell: "touch {{output}}"
rule pull:
    input: "results/c{{i}}/metrics"
    output: "results/c{{i}}/pulled"
    shell: "touch {{output}}"
rule row:
    input: "results/c{{i}}/metrics", "results/c{{i}}/pulled"
    output: "results/c{{i}}/row"
    shell: "touch {{output}}"
"""


def build_checkout(root: Path) -> None:
    from slm_bench.checkout import derive_envs

    (root / "docs").mkdir(parents=True)
    shutil.copyfile(FIXTURES / "BENCHMARKS.md", root / "docs" / "BENCHMARKS.md")
    shutil.copytree(FIXTURES / "specs", root / "slm_lab" / "spec")
    template = yaml.safe_load((root / "slm_lab/spec" / TEMPLATE[0]).read_text())[TEMPLATE[1]]
    _, skipped = derive_envs({"root": str(root), "benchmarks": "docs/BENCHMARKS.md"})
    missing: dict[Path, dict] = {}
    for row in skipped:
        if not row.reason.startswith("spec file not found: "):
            continue
        path = Path(row.reason.removeprefix("spec file not found: "))
        body = yaml.safe_load(yaml.safe_dump(template))
        body["env"].update(name="${env}", max_frame="${max_frame}")
        missing.setdefault(path, {})[row.spec_name] = body
    for path, specs in missing.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(specs, sort_keys=False)
        # SLM-Lab's placeholders: quoted in the file, substituted before parsing.
        text = re.sub(r"'(\$\{\w+\})'", r'"\1"', text)
        path.write_text(text)


def dry_run(workdir: Path, snakefile: Path) -> tuple[float, int]:
    argv = [
        sys.executable, "-m", "snakemake", "-n", "-s", str(snakefile), "-d", str(workdir),
        "--cores", "1", "--workflow-profile", "none", "--profile", "none", "--quiet", "rules",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    jobs = int(re.search(r"^total\s+(\d+)$", result.stdout, re.M).group(1))
    return elapsed, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"{FIXTURES} is absent: this benchmark needs the real SLM-Lab files")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_checkout(tmp / "SLM-Lab")
        work = tmp / "work"
        work.mkdir()
        (work / "config.yaml").write_text(
            yaml.safe_dump({"checkout": {"root": str(tmp / "SLM-Lab")}})
        )
        from slm_bench.config import build_matrix, load_config

        matrix = build_matrix(load_config({"checkout": {"root": str(tmp / "SLM-Lab")}}))
        trivial_dir = tmp / "trivial"
        trivial_dir.mkdir()
        trivial = trivial_dir / "Snakefile"
        trivial.write_text(TRIVIAL.format(cells=len(matrix.cells), envs=len(matrix.envs)))

        ours, theirs = [], []
        for _ in range(args.repeat):  # interleaved, so load affects both alike
            seconds, jobs_ours = dry_run(work, REPO / "Snakefile")
            ours.append(seconds)
            seconds, jobs_trivial = dry_run(trivial_dir, trivial)
            theirs.append(seconds)
        print(
            f"rows planned: {len(matrix.cells)} of 292 ({len(matrix.skipped)} not planned), "
            f"envs: {len(matrix.envs)}"
        )
        print(f"slm-bench   snakemake -n: {statistics.median(ours):6.2f} s  ({jobs_ours} jobs)")
        print(
            f"trivial     snakemake -n: {statistics.median(theirs):6.2f} s  ({jobs_trivial} jobs)"
        )
        print(f"ratio (goal <= 1.5): {statistics.median(ours) / statistics.median(theirs):.2f}")


if __name__ == "__main__":
    main()
