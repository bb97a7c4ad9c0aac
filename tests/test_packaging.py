"""A project others can install: the wheel, declared dependencies, constraints, clean sources.

The slow test installs the project with ``pip install .`` (not editable) into a new venv and runs
the workflow from another working directory, as a user of the package would.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from workflow_helpers import planned_jobs

import slm_bench
from slm_bench import validation

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
NO_PROFILES = ("--workflow-profile", "none", "--profile", "none")


def git_files(*args: str) -> list[str]:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(
        ["git", "ls-files", "-z", *args], cwd=REPO, capture_output=True, check=True
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def copy_checkout(dest: Path) -> Path:
    """The files a clone would have (tracked, plus new files not ignored), as in the work tree."""
    for name in git_files("--cached", "--others", "--exclude-standard"):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def run(argv: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{' '.join(map(str, argv))}\n{done.stdout[-6000:]}"
    return done


def requirements(extra: str | None = None) -> list[Requirement]:
    project = PYPROJECT["project"]
    specs = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(spec) for spec in specs]


def _is_importorskip(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "importorskip"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
    )


def imported_modules(paths: list[Path]) -> dict[str, Path]:
    """Top-level names imported by ``paths`` (``pytest.importorskip`` too) -> one file each."""
    found: dict[str, Path] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif _is_importorskip(node):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def undeclared(paths: list[Path], declared: set[str], local: set[str]) -> list[str]:
    """Imports of ``paths`` that no declared distribution provides."""
    providers = importlib.metadata.packages_distributions()
    missing = []
    for module, path in sorted(imported_modules(paths).items()):
        if module in sys.stdlib_module_names or module in local or module == "__future__":
            continue
        dists = {canonicalize_name(dist) for dist in providers.get(module, [module])}
        if not dists & declared:
            missing.append(f"{path.relative_to(REPO)}: {module} (from {', '.join(sorted(dists))})")
    return missing


def test_every_import_of_the_package_and_scripts_is_a_declared_dependency() -> None:
    declared = {canonicalize_name(req.name) for req in requirements()}
    slurm = REPO / "slm_bench" / "slurm"
    paths = [*sorted((REPO / "slm_bench").rglob("*.py")), *sorted((REPO / "scripts").glob("*.py"))]
    core = [path for path in paths if slurm not in path.parents]
    assert undeclared(core, declared, local={"slm_bench"}) == []
    # The Slurm route (slm_bench/slurm/) may also use the `slurm` extra, and only it may.
    with_slurm = declared | {canonicalize_name(req.name) for req in requirements("slurm")}
    assert undeclared(sorted(slurm.rglob("*.py")), with_slurm, local={"slm_bench"}) == []


def test_every_import_of_the_tests_is_declared_for_them() -> None:
    declared = {canonicalize_name(req.name) for req in requirements() + requirements("test")}
    tests = REPO / "tests"
    local = {"slm_bench"} | {path.stem for path in tests.glob("*.py")}
    local |= {path.name for path in tests.iterdir() if path.is_dir()}
    assert undeclared(sorted(tests.rglob("*.py")), declared, local) == []


def test_torch_is_bounded_not_pinned() -> None:
    (torch,) = [req for req in requirements() if req.name == "torch"]
    operators = {spec.operator for spec in torch.specifier}
    assert "==" not in operators and "===" not in operators
    assert {">=", "<"} <= operators, f"torch should have a lower and an upper bound: {torch}"


def constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate((REPO / "constraints.txt").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.!]*)", line)
        assert match, f"constraints.txt:{number}: {line!r}: expected NAME==VERSION"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt:{number}: {name} pinned twice"
        pins[name] = match.group(2)
    return pins


def test_constraints_pin_every_declared_dependency_within_its_range() -> None:
    pins = constraint_pins()
    assert "slm-bench" not in pins
    for req in requirements() + requirements("test"):
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {name} ({req})"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {req}"
        )


def test_makefile_installs_with_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^EDITABLE := \.\[test,slurm\]$", makefile, re.M)
    assert re.search(r"pip install .*-c constraints\.txt -e '\$\(EDITABLE\)'", makefile)
    assert re.search(r"pip install .*-c constraints-dstack\.txt ", makefile)


def test_every_venv_the_makefile_creates_is_ignored() -> None:
    git_files()  # skips outside a git checkout
    makefile = (REPO / "Makefile").read_text()
    folders = re.findall(r"^[A-Z_]*(?:VENV|COPY)\s*\?=\s*(\S+)", makefile, flags=re.M)
    assert ".venv" in folders and ".venv-dstack" in folders
    for folder in folders:
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{folder}/x"], cwd=REPO)
        assert ignored.returncode == 0, f"{folder}/ (made by the Makefile) is not git-ignored"


# Absolute paths of a developer's machine, and notes about how the project was developed.
LEFTOVERS = re.compile(
    r"(?<![\w.}])/(?:work|root|home/\w+|Users/\w+)/|wheel cache|\bthe lead\b|\bhelper session",
    re.IGNORECASE,
)


def test_tracked_files_hold_no_development_leftovers() -> None:
    tracked = git_files()
    assert not [name for name in tracked if name.startswith((".plan/", "plan/"))]
    found = []
    this_file = Path(__file__).resolve().relative_to(REPO).as_posix()  # it holds the patterns
    for name in tracked:
        path = REPO / name
        if name == this_file:
            continue
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [
            f"{name}:{number}: {line.strip()[:100]}"
            for number, line in enumerate(text.splitlines(), 1)
            if LEFTOVERS.search(line)
        ]
    assert found == []


def test_a_source_tree_reads_the_top_level_schemas() -> None:
    if Path(slm_bench.__file__).resolve().parent != REPO / "slm_bench":
        pytest.skip("slm_bench is imported from an installed wheel, not from this checkout")
    assert validation.schema_dir() == REPO / "schemas"
    assert validation.load_schema("config.schema.yaml")["type"] == "object"


def build_wheel(source: Path, out: Path) -> Path:
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, source],
        cwd=source, timeout=300)  # fmt: skip
    (wheel,) = out.glob("slm_bench-*.whl")
    return wheel


def test_the_wheel_ships_every_module_the_schemas_and_the_baseline(tmp_path: Path) -> None:
    source = copy_checkout(tmp_path / "src")
    built = build_wheel(source, tmp_path / "dist")
    assert built.name.startswith(f"slm_bench-{slm_bench.__version__}-")
    with zipfile.ZipFile(built) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    modules = {path.relative_to(source).as_posix() for path in source.glob("slm_bench/**/*.py")}
    assert modules - names == set()
    schemas = {f"slm_bench/schemas/{path.name}" for path in (source / "schemas").glob("*.yaml")}
    assert schemas and schemas - names == set()
    assert "slm_bench/data/random_baseline.json" in names
    assert not [name for name in names if name.startswith(("tests/", "schemas/", "scripts/"))]
    assert re.search(r"^Requires-Dist: torch<3,>=2\.\d+$", metadata, flags=re.M)
    assert re.search(r"^Requires-Dist: httpx2", metadata, flags=re.M)


def tiny_config(spec_root: Path) -> dict:
    """One cell of the default benchmark (its Settings but a tiny max_frame)."""
    default = yaml.safe_load((REPO / "config.yaml").read_text())
    env_id, entry = next(iter(default["envs"].items()))
    settings = {**entry["settings"], "max_frame": 2000}
    algorithms = {"ppo": entry["algorithms"]["ppo"]}
    envs = {env_id: {**entry, "settings": settings, "algorithms": algorithms}}
    return {**default, "spec_root": str(spec_root), "envs": envs}


@pytest.mark.slow
def test_pip_install_runs_the_workflow_from_another_directory(tmp_path: Path) -> None:
    """``pip install .`` into a new venv; dry run and a tiny real run outside the checkout.

    pip installs the constraints' versions, as ``make setup`` did, so they come from pip's cache.
    """
    source = copy_checkout(tmp_path / "slm-bench")
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    started = time.monotonic()
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, timeout=120)
    pip_args = os.environ.get("SLM_BENCH_PIP_ARGS", "").split()
    run([venv / "bin" / "pip", "install", "--quiet", *pip_args, "-c", source / "constraints.txt",
         source], cwd=tmp_path, timeout=1200)  # fmt: skip
    print(f"venv and pip install .: {time.monotonic() - started:.0f} s")

    site = run([venv / "bin" / "python", "-c",
                "import slm_bench, slm_bench.validation as v; print(slm_bench.__file__);"
                "print(v.schema_dir())"], cwd=elsewhere, timeout=60).stdout.split()  # fmt: skip
    package = Path(site[0]).parent
    assert package.is_relative_to(venv) and "site-packages" in package.parts
    assert Path(site[1]) == package / "schemas"
    assert (package / "schemas" / "config.schema.yaml").is_file()
    assert (package / "data" / "random_baseline.json").is_file()

    snakemake = [venv / "bin" / "snakemake", "-s", source / "Snakefile", "-d", elsewhere,
                 "--cores", "2", *NO_PROFILES]  # fmt: skip
    dry = run([*snakemake, "-n", "--configfile", source / "config.yaml",
               "--config", f"spec_root={source}"], cwd=elsewhere, timeout=300)  # fmt: skip
    default = yaml.safe_load((source / "config.yaml").read_text())
    cells = sum(len(entry["algorithms"]) for entry in default["envs"].values())
    jobs = planned_jobs(dry.stdout)
    assert jobs["run_cell"] == cells and jobs["write_row"] == cells
    assert jobs["write_benchmarks"] == 1
    assert not (elsewhere / "results").exists()

    (elsewhere / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(source), sort_keys=False))
    run([*snakemake, "--configfile", "tiny.yaml"], cwd=elsewhere, timeout=900)
    table = elsewhere / "results" / "BENCHMARKS.md"
    assert re.search(r"^\| PPO \|[^|]*\| \d+\.\d\d \| ", table.read_text(), flags=re.M)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(table.stat().st_mode) == 0o666 & ~umask
    assert not (source / "results").exists() and not (source / ".snakemake").exists()
