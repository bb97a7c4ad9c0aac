"""The embedded run's folder files, written as SLM-Lab writes them.

As SLM-Lab does, a session rewrites its ``session_df_train.csv`` and ``session_metrics_train``
files at every checkpoint once it has more than 2, and session 0 then rewrites the trial metrics
from every session's latest file: a run killed half-way leaves a folder whose trial metrics end
below ``max_frame``, exactly like a killed ``slm-lab run``. The values are float32 (SLM-Lab's
session_df dtype) and JSON ends without a newline (SLM-Lab's ``util.write``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from slm_bench.atomic import write_text
from slm_bench.formats.metrics import session_metrics, trial_metrics
from slm_bench.formats.run_folder import RunLayout

# SLM-Lab's analysis asserts more than 2 checkpoints before it computes metrics.
MIN_ROWS_FOR_METRICS = 3


def write_slm_json(path: Path, data: object) -> Path:
    """JSON as SLM-Lab's ``util.write`` writes it: indent 2, bare NaN, no trailing newline."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=True))


@dataclass(frozen=True)
class RunOutput:
    """Where and how a trial's sessions write their files (picklable: sessions run in workers)."""

    root: Path
    run_name: str
    random_baseline: float
    columns: tuple[str, ...]

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.root, self.run_name)

    def session_df(self, rows: Sequence[Sequence[float]]) -> pd.DataFrame:
        return pd.DataFrame(list(rows), columns=list(self.columns), dtype=np.float32)

    def write_session(
        self, session: int, rows: Sequence[Sequence[float]], modes: Sequence[str] = ("train",)
    ) -> dict:
        """Write the session's df and metrics for each df mode; return the metrics."""
        session_df = self.session_df(rows)
        metrics = session_metrics(session_df, self.random_baseline)
        csv = session_df.to_csv(index=False)
        layout = self.layout
        for mode in modes:
            write_text(layout.session_df_csv(session, mode), csv)
            write_slm_json(layout.session_metrics_json(session, mode), metrics)
            write_slm_json(layout.session_metrics_scalar_json(session, mode), metrics["scalar"])
        return metrics

    def write_trial(self, metrics_list: list[dict]) -> dict:
        """Write the trial metrics (info/ and the root copy of the scalars); return them."""
        trial = trial_metrics(metrics_list)
        layout = self.layout
        write_slm_json(layout.trial_metrics_json, trial)
        write_slm_json(layout.trial_metrics_scalar_json, trial["scalar"])
        write_slm_json(layout.root_trial_metrics_scalar_json, trial["scalar"])
        return trial

    def write_interim_trial(self) -> dict | None:
        """The trial metrics from the sessions' latest train metrics (SLM-Lab's analyze_trial at
        a checkpoint of session 0); None when no session has written any yet."""
        pattern = re.compile(rf"{re.escape(self.layout.trial_prefix)}_s(\d+)_session_metrics_train")
        found = []
        for path in self.layout.info_dir.glob("*_session_metrics_train.json"):
            if match := pattern.fullmatch(path.stem):
                found.append((int(match.group(1)), path))
        metrics_list = [json.loads(path.read_text()) for _, path in sorted(found)]
        return self.write_trial(metrics_list) if metrics_list else None
