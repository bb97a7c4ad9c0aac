"""The real SLM-Lab: the pipeline drives `slm-lab run`, and SLM-Lab reads embedded run folders.

These tests need SLM-Lab's whole source (env SLM_BENCH_SLM_LAB_SRC, else ../shared/slm-lab next
to the project) and the venv `make slm-lab-venv` builds from it (env SLM_BENCH_SLM_LAB_VENV, else
.venv-slm-lab); they skip with the reason when either is missing.

SLM-Lab runs from its checkout: it reads SPEC_FILE under ``slm_lab/spec/`` of the current directory
and writes ``data/`` next to its own package. The tests run on a copy of the checkout, with
``slm-lab`` pointed at it through PYTHONPATH, so runs never write into the shared source.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from workflow_helpers import REPO, make_workdir, snakemake

from slm_bench.formats.logs import read_run_log
from slm_bench.formats.run_folder import RunLayout
from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import run_trial
from slm_bench.runners.slm_lab import budget_variant, command_of, working_copy

SLM_LAB_SRC = Path(
    os.environ.get("SLM_BENCH_SLM_LAB_SRC")
    or Path(__file__).resolve().parents[2] / "shared" / "slm-lab"
)
SLM_LAB_VENV = Path(os.environ.get("SLM_BENCH_SLM_LAB_VENV") or REPO / ".venv-slm-lab")
SLM_LAB = SLM_LAB_VENV / "bin" / "slm-lab"

# A variant of SLM-Lab's own ppo_cartpole_arc (benchmark_arc/ppo/ppo_classic_arc.yaml) whose
# max_frame comes from ${max_frame}, with 2 sessions: the real one hard-codes 200000 frames.
REAL_SPEC = "slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc.yaml"
TINY_SPEC = "slm_lab/spec/benchmark_arc/ppo/ppo_classic_arc_tiny.yaml"
SPEC_NAME = "ppo_cartpole_arc"
# The smallest budget that still gives a trial: more than 2 checkpoints per session (1000 frames
# at log_frequency 500 is 2, and SLM-Lab's analysis fails), and one PPO update (1024 frames).
SETTINGS = {"max_frame": 1500, "num_envs": 4, "max_session": 2, "log_frequency": 500}


def _require_slm_lab() -> None:
    if not (SLM_LAB_SRC / "slm_lab").is_dir():
        pytest.skip(f"no SLM-Lab source at {SLM_LAB_SRC} (set SLM_BENCH_SLM_LAB_SRC)")
    if not SLM_LAB.exists():
        pytest.skip(f"no SLM-Lab venv at {SLM_LAB_VENV} (run `make slm-lab-venv`)")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of SLM-Lab's checkout with the tiny spec variant, and an `slm-lab` that runs it."""
    _require_slm_lab()
    root = working_copy(SLM_LAB_SRC, SLM_LAB, tmp_path_factory.mktemp("slm-lab") / "SLM-Lab")
    budget_variant(root, REAL_SPEC, SPEC_NAME, TINY_SPEC, {"max_session": SETTINGS["max_session"]})
    return root


def slm_lab(checkout: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a real SLM-Lab command in the checkout copy."""
    return subprocess.run(
        [str(command_of(checkout)), *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_pipeline_with_the_real_slm_lab_to_a_verified_row_and_plot(checkout, tmp_path):
    config = {
        "runner": "slm-lab",
        "store": "local",
        "slm_lab": {"command": str(command_of(checkout))},
        "spec_root": str(checkout),
        "envs": {
            "CartPole-v1": {
                "settings": SETTINGS,
                "target": "> 400",
                "algorithms": {
                    "ppo": {"label": "PPO", "spec_file": TINY_SPEC, "spec_name": SPEC_NAME}
                },
            }
        },
    }
    workdir = make_workdir(tmp_path / "work", config)
    result = snakemake(workdir, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    cell = workdir / "results/CartPole-v1/ppo"
    marker = json.loads((cell / "run.json").read_text())
    metrics = json.loads((cell / "metrics.json").read_text())
    assert marker["runner"] == "slm-lab" and metrics["data_folder"] == marker["data_folder"]
    # the real run: SLM-Lab's own log lines and folder (graphs, its own model files)
    log = read_run_log(cell / "train.log")
    assert log.data_folder == marker["data_folder"] and log.trial_metrics["frame"] == 1500
    assert "slm_lab.agent:log_summary" in (cell / "train.log").read_text(errors="replace")
    folder = cell / "hf_data" / "data" / marker["data_folder"]
    assert list(folder.glob("graph/*_session_graph_train_mean_returns_vs_frames.png"))
    assert list(folder.glob(f"model/{SPEC_NAME}_t0_s0_net_model.pt"))
    trial = json.loads(RunLayout(folder, SPEC_NAME).trial_metrics_scalar_json.read_text())
    assert trial["frame"] == 1500
    assert f"{trial['total_reward_ma']:.2f}" == f"{metrics['total_reward_ma']:.2f}"
    # a verified row linking the stored folder, and the plot
    table = (workdir / "results/BENCHMARKS.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| PPO |")]
    assert len(rows) == 1
    cells = [part.strip() for part in rows[0].strip("|").split("|")]
    assert cells[2] == f"{metrics['total_reward_ma']:.2f}" and cells[4] == SPEC_NAME
    assert cells[5].startswith(f"[{marker['data_folder']}](")
    stored = workdir / "results/store/SLM-Lab/benchmark-dev/data" / marker["data_folder"]
    assert stored.is_dir()
    plot = workdir / "results/plots/CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    assert plot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def embedded_folder(checkout) -> Path:
    """An embedded run of the same SLM-Lab spec, written under the checkout's data/ (the plot
    reads it first; the retro-analysis then rewrites its trial metrics)."""
    spec = resolve_spec(checkout / TINY_SPEC, SPEC_NAME, {"max_frame": SETTINGS["max_frame"]})
    return run_trial(
        spec,
        TINY_SPEC,
        SPEC_NAME,
        SPEC_NAME,
        checkout / "data",
        max_workers=2,
        stream=io.StringIO(),
        seed=5,
    )


def test_real_slm_lab_plot_reads_an_embedded_run_folder(checkout, embedded_folder, tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()  # slm-lab plot writes into an existing folder (a checkout's docs/plots)
    result = slm_lab(
        checkout,
        "plot",
        "-t",
        "CartPole-v1",
        "-f",
        embedded_folder.name,
        "-d",
        str(embedded_folder.parent),
        "-o",
        str(plots),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    png = plots / "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png"
    assert png.stat().st_size > 10_000
    assert "PPO:" in result.stdout + result.stderr  # the label it read from the folder's spec


def test_real_retro_analysis_recomputes_the_embedded_trial_metrics(checkout, embedded_folder):
    """SLM-Lab's retro-analysis reads the embedded folder's session metrics and recomputes the
    trial metrics with its own code: they equal the embedded runner's."""
    layout = RunLayout(embedded_folder, SPEC_NAME)
    ours = json.loads(layout.trial_metrics_scalar_json.read_text())
    relative = embedded_folder.relative_to(checkout)
    result = slm_lab_retro(checkout, str(relative))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    theirs = json.loads(layout.trial_metrics_scalar_json.read_text())
    assert list(theirs) == list(ours)
    assert theirs == pytest.approx(ours, rel=1e-5, nan_ok=True)
    assert list(embedded_folder.glob(f"graph/{SPEC_NAME}_t0_trial_graph_mean_returns*.png"))


def slm_lab_retro(checkout: Path, predir: str) -> subprocess.CompletedProcess:
    """SLM-Lab's `slm-retro` (its retro-analysis entry point) on a folder of the checkout."""
    retro = SLM_LAB.parent / "slm-retro"
    return subprocess.run(
        [str(retro), predir],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_budget_variant_takes_max_frame_from_the_command_line(tmp_path):
    """The variant resolves like the original spec except max_frame (from -s) and meta."""
    fixture = REPO / "tests" / "fixtures" / "slm-lab" / "specs" / "benchmark_arc" / "ppo"
    (tmp_path / REAL_SPEC).parent.mkdir(parents=True)
    (tmp_path / REAL_SPEC).write_text((fixture / "ppo_classic_arc.yaml").read_text())
    budget_variant(tmp_path, REAL_SPEC, SPEC_NAME, TINY_SPEC, {"max_session": 2})
    original = resolve_spec(tmp_path / REAL_SPEC, SPEC_NAME)
    variant = resolve_spec(tmp_path / TINY_SPEC, SPEC_NAME, {"max_frame": "1.5e3"})
    assert variant["env"]["max_frame"] == 1500 and variant["meta"]["max_session"] == 2
    for body in (original, variant):
        body["env"].pop("max_frame"), body["meta"].pop("max_session")
    assert variant == original
