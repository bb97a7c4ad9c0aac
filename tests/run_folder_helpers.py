"""Run folders in SLM-Lab's layout for the folder and plot tests, computed with the project's
port of SLM-Lab's metrics so the trial metrics and the session CSVs agree as in a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from slm_bench.formats.metrics import session_metrics, trial_metrics

MEMORY = {"DoubleDQN": "PrioritizedReplay", "SoftActorCritic": "Replay", "DQN": "Replay"}
CSV_COLUMNS = ["total_reward", "total_reward_ma", "loss", "fps", "frame", "wall_t", "t", "epi"]


def write_run(
    root: Path,
    name: str,
    algorithm: str,
    returns: list[list[float]],
    frames: list[int],
    *,
    max_frame: int | None = None,
    num_envs: int = 1,
    memory: str | None = None,
    stamp: str = "2026_02_11_144029",
) -> Path:
    """A train run folder: session ``s`` checkpointed at ``frames[: len(returns[s])]``.

    ``max_frame`` defaults to the last frame (a complete run); sessions shorter than ``frames``
    make a run that was killed part-way.
    """
    folder = root / f"{name}_{stamp}"
    (folder / "info").mkdir(parents=True)
    spec = {
        "agent": {
            "name": algorithm,
            "algorithm": {"name": algorithm},
            "memory": {"name": memory or MEMORY.get(algorithm, "OnPolicyBatchReplay")},
        },
        "env": {"name": "CartPole-v1", "num_envs": num_envs, "max_frame": max_frame or frames[-1]},
        "meta": {
            "distributed": False,
            "max_session": len(returns),
            "log_frequency": frames[0],
            "trial": 0,
            "session": -1,
        },
    }
    (folder / f"{name}_spec.json").write_text(json.dumps(spec, indent=2))
    (folder / f"{name}_t0_spec.json").write_text(json.dumps(spec, indent=2))
    sessions = []
    for s, session_returns in enumerate(returns):
        n = len(session_returns)
        df = pd.DataFrame(
            {
                "total_reward": session_returns,
                "total_reward_ma": pd.Series(session_returns).rolling(100, min_periods=1).mean(),
                "loss": 0.5,
                "fps": 1000.0,
                "frame": [float(f) for f in frames[:n]],
                "wall_t": range(n),
                "t": 100,
                "epi": range(n),
                "opt_step": [float(f) / 4 for f in frames[:n]],
                "lr": 0.0003,
            }
        )
        df.to_csv(folder / "info" / f"{name}_t0_s{s}_session_df_train.csv", index=False)
        sessions.append(session_metrics(df, 0.0))
    metrics = trial_metrics(sessions)
    (folder / "info" / f"{name}_t0_trial_metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / "info" / f"{name}_t0_trial_metrics_scalar.json").write_text(
        json.dumps(metrics["scalar"], indent=2)
    )
    return folder


def slm_lab_python() -> Path:
    """The Python of the real SLM-Lab venv (``make slm-lab-venv``); skips the test without it."""
    import os

    import pytest

    venv = Path(
        os.environ.get("SLM_BENCH_SLM_LAB_VENV")
        or Path(__file__).resolve().parents[1] / ".venv-slm-lab"
    )
    python = venv / "bin" / "python"
    if not (venv / "bin" / "slm-lab").exists():
        pytest.skip(f"no SLM-Lab venv at {venv} (run `make slm-lab-venv`)")
    return python
