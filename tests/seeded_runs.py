"""Two real tiny pipeline builds of one cell with the same fixed seed, shared by the tests of the
seeds and of the provenance (each build trains CartPole PPO: 2000 frames x 2 sessions)."""

from __future__ import annotations

import csv
from pathlib import Path

from built_once import built_once
from workflow_helpers import make_workdir, snakemake, tiny_config

CELL = "CartPole-v1/ppo"
SEED = 7


def seeded_config(seed: int | None = SEED) -> dict:
    config = tiny_config(seed=seed)
    cartpole = config["envs"]["CartPole-v1"]
    cartpole["settings"] = {**cartpole["settings"], "max_session": 2}
    cartpole["algorithms"] = {"ppo": cartpole["algorithms"]["ppo"]}
    return config


def seeded_builds(tmp_path_factory) -> list[Path]:
    """Two working directories, each built from scratch with ``seed: 7`` (once per test run)."""
    builds = []
    for name in ("first", "second"):

        def build(workdir: Path) -> None:
            make_workdir(workdir, seeded_config())
            spec = workdir / "specs" / "ppo_classic.yaml"  # 2 sessions, as the Settings say
            spec.write_text(spec.read_text().replace("max_session: 4", "max_session: 2"))
            target = f"results/{CELL}/row.json"
            result = snakemake(workdir, target, f"results/{CELL}/hf_data")
            assert result.returncode == 0, result.stdout[-4000:]

        builds.append(built_once(tmp_path_factory, f"seeded-{name}", build))
    return builds


def pulled_folder(workdir: Path) -> Path:
    (folder,) = (workdir / "results" / CELL / "hf_data" / "data").iterdir()
    return folder


def session_column(folder: Path, session: int, column: str = "total_reward") -> list[str]:
    """One column of a session's session_df CSV, as written (text: compared exactly)."""
    (path,) = folder.rglob(f"*_t0_s{session}_session_df_train.csv")
    with path.open(newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]
