"""Plan-time errors say where the bad value came from: the checkout's BENCHMARKS.md (file, env,
line), config.yaml, which --configfile, or the command line's --config. Real Snakemake dry runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from workflow_helpers import REPO, make_workdir, planned_jobs, snakemake, tiny_config

from slm_bench.matrix.config import build_matrix, load_config
from slm_bench.steps.tables import render_benchmarks

HERE = Path(__file__).resolve().parent
OWN = HERE / "fixtures" / "checkout"
ACROBOT_SETTINGS = "**Settings**: max_frame 3e5 | num_envs 4 | max_session 4 | log_frequency 500"


def checkout_with(root: Path, old: str, new: str) -> tuple[Path, int]:
    """The fixture checkout with one line replaced; returns the doc and that line's number."""
    (root / "docs").mkdir(parents=True)
    spec_dir = root / "slm_lab" / "spec" / "benchmark"
    spec_dir.mkdir(parents=True)
    for name in ("ppo_tiny.yaml", "reinforce.yaml"):
        shutil.copyfile(OWN / name, spec_dir / name)
    lines = (OWN / "BENCHMARKS.md").read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, 1) if line.rstrip("\n") == old)
    lines[number - 1] = new + "\n"
    doc = root / "docs" / "BENCHMARKS.md"
    doc.write_text("".join(lines))
    return doc, number


def plan_checkout(tmp_path: Path, checkout: dict):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump({"checkout": checkout}))
    return snakemake(workdir, "-n")


def test_garbage_settings_line_leaves_its_env_unplanned_naming_file_env_and_line(tmp_path):
    root = tmp_path / "SLM-Lab"
    garbage = ACROBOT_SETTINGS.replace("3e5", "banana")
    doc, number = checkout_with(root, ACROBOT_SETTINGS, garbage)

    plan = plan_checkout(tmp_path, {"root": str(root)})

    assert plan.returncode == 0, plan.stdout[-3000:]
    expected = (
        f"slm-bench: row not planned: Acrobot-v1 | PPO | slm_lab/spec/benchmark/missing.yaml "
        f"ppo_acrobot: {doc} line {number}: Acrobot-v1: Settings line: max_frame: expected a "
        "number like 2e5, 10000 or 100M, got 'banana'"
    )
    assert expected in plan.stdout.splitlines()
    jobs = planned_jobs(plan.stdout)  # CartPole's runnable row is still planned
    assert jobs["run_cell"] == 1 and jobs["write_benchmarks"] == 1, jobs


def test_garbage_settings_line_of_an_env_the_config_names_is_an_error(tmp_path):
    root = tmp_path / "SLM-Lab"
    doc, number = checkout_with(root, ACROBOT_SETTINGS, ACROBOT_SETTINGS.replace("3e5", "3e5x"))

    plan = plan_checkout(tmp_path, {"root": str(root), "envs": ["Acrobot-v1", "CartPole-v1"]})

    assert plan.returncode != 0
    line = f"{doc} line {number}: Acrobot-v1: Settings line: max_frame: expected a number"
    assert any(out.startswith(line) for out in plan.stdout.splitlines()), plan.stdout[-2000:]
    assert "Traceback" not in plan.stdout


def test_zero_max_frame_in_a_checkout_names_its_settings_line(tmp_path):
    root = tmp_path / "SLM-Lab"
    cartpole = "**Settings**: max_frame 2000 | num_envs 4 | max_session 2 | log_frequency 500"
    doc, number = checkout_with(root, cartpole, cartpole.replace("2000", "0"))

    plan = plan_checkout(tmp_path, {"root": str(root), "envs": ["CartPole-v1"]})

    assert plan.returncode != 0
    expected = f"{doc} line {number}: CartPole-v1: Settings line: max_frame: expected at least 1"
    assert any(out.startswith(expected) for out in plan.stdout.splitlines()), plan.stdout[-2000:]
    assert "ppo_tiny" not in plan.stdout  # the spec is not blamed


def _zero_frames(config: dict) -> dict:
    config["envs"]["CartPole-v1"]["settings"]["max_frame"] = 0
    return config


def test_zero_max_frame_names_the_config_that_set_it_not_the_spec(tmp_path):
    workdir = make_workdir(tmp_path / "work", _zero_frames(tiny_config()))

    plan = snakemake(workdir, "-n")

    assert plan.returncode != 0
    line = "config.yaml: envs.CartPole-v1.settings: max_frame: expected at least 1, got 0"
    assert line in plan.stdout.splitlines(), plan.stdout[-2000:]
    assert "specs/" not in plan.stdout.split("Building DAG", 1)[-1]

    (workdir / "mine.yaml").write_text(yaml.safe_dump(_zero_frames(tiny_config())))
    (workdir / "faster.yaml").write_text("time_limit: 1h\n")
    plan = snakemake(workdir, "-n", "--configfile", "mine.yaml", "faster.yaml")
    assert plan.returncode != 0
    assert line.replace("config.yaml", "mine.yaml") in plan.stdout.splitlines()


def test_errors_name_the_command_line_or_the_configfile_that_set_the_value(tmp_path):
    workdir = make_workdir(tmp_path / "work", tiny_config())
    (workdir / "extra.yaml").write_text("runner: embeded\n")

    typo = snakemake(workdir, "-n", "--config", "runnr=embedded")
    from_file = snakemake(workdir, "-n", "--configfile", "config.yaml", "extra.yaml")
    fixed = snakemake(
        workdir, "-n", "--configfile", "config.yaml", "extra.yaml", "--config", "runner=embedded"
    )
    duration = snakemake(workdir, "-n", "--config", "time_limit=5x")

    assert typo.returncode != 0
    assert any(line.startswith("--config: unknown key 'runnr'") for line in typo.stdout.split("\n"))
    assert "config.yaml: unknown key" not in typo.stdout
    assert from_file.returncode != 0
    assert "extra.yaml: runner: got 'embeded'" in from_file.stdout
    assert fixed.returncode == 0, fixed.stdout[-2000:]  # --config wins over the file
    assert duration.returncode != 0 and "--config: time_limit: got '5x'" in duration.stdout


def test_absolute_spec_file_outside_the_project_is_refused_at_plan_time(tmp_path):
    outside = tmp_path / "elsewhere" / "ppo_classic.yaml"
    outside.parent.mkdir()
    shutil.copyfile(REPO / "specs" / "ppo_classic.yaml", outside)
    config = tiny_config()
    config["envs"]["CartPole-v1"]["algorithms"]["ppo"]["spec_file"] = str(outside)
    workdir = make_workdir(tmp_path / "work", config)

    plan = snakemake(workdir, "-n")

    assert plan.returncode != 0
    expected = (
        f"config.yaml: envs.CartPole-v1.algorithms.ppo.spec_file: '{outside}' is outside the "
        "project"
    )
    assert any(line.startswith(expected) for line in plan.stdout.splitlines()), plan.stdout


def test_absolute_spec_file_inside_the_project_is_linked_relative_to_the_table(
    tmp_path, monkeypatch
):
    workdir = make_workdir(tmp_path / "work", tiny_config())
    monkeypatch.chdir(workdir)
    spec_file = str(workdir / "specs" / "ppo_classic.yaml")
    config = load_config(tiny_config())
    config["envs"]["CartPole-v1"]["algorithms"]["ppo"]["spec_file"] = spec_file
    entry = build_matrix(config).envs["CartPole-v1"]
    row = {
        "algorithm": "PPO",
        "status": "",
        "ma": 21.5,
        "spec_file": spec_file,
        "spec_name": "ppo_cartpole",
        "hf_folder": "ppo_cartpole_2026_01_01_000000",
        "hf_url": "https://huggingface.co/datasets/SLM-Lab/benchmark-dev/tree/main/data/x",
        "settings": entry.settings.line(),
    }
    plots = {entry.env: Path("plots/CartPole-v1.png")}
    for doc_dir, link in (
        (Path("results"), "../specs/ppo_classic.yaml"),
        (Path("results/CartPole-v1"), "../../specs/ppo_classic.yaml"),
    ):
        text = render_benchmarks([entry], {entry.env: [row]}, plots, doc_dir, "T", Path("."))
        line = next(line for line in text.splitlines() if line.startswith("| PPO |"))
        assert f"| [specs/ppo_classic.yaml]({link}) |" in line
        assert str(workdir) not in text
        assert (doc_dir / link).resolve() == Path(spec_file)  # the link resolves from the table
