"""SLM-Lab run folders (``data/{name}_{YYYY_MM_DD_HHMMSS}``): their layout, and reading one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The timestamp SLM-Lab appends to a run folder name (local time).
FOLDER_TS_RE = re.compile(r"(\d{4}_\d{2}_\d{2}_\d{6})$")
FOLDER_TS_FORMAT = "%Y_%m_%d_%H%M%S"


def folder_name(prefix: str, when: datetime) -> str:
    """``{prefix}_{YYYY_MM_DD_HHMMSS}``."""
    return f"{prefix}_{when.strftime(FOLDER_TS_FORMAT)}"


@dataclass(frozen=True)
class RunLayout:
    """Every path of a train run folder ``root`` whose experiment prefix is ``prefix``.

    Trial ``t0`` is the only trial of a train run; ``s`` is a session index.
    """

    root: Path
    prefix: str

    @property
    def trial_prefix(self) -> str:
        return f"{self.prefix}_t0"

    def session_prefix(self, s: int) -> str:
        return f"{self.prefix}_t0_s{s}"

    @property
    def spec_json(self) -> Path:
        return self.root / f"{self.prefix}_spec.json"

    @property
    def trial_spec_json(self) -> Path:
        return self.root / f"{self.trial_prefix}_spec.json"

    @property
    def info_dir(self) -> Path:
        return self.root / "info"

    @property
    def trial_metrics_json(self) -> Path:
        return self.info_dir / f"{self.trial_prefix}_trial_metrics.json"

    @property
    def trial_metrics_scalar_json(self) -> Path:
        return self.info_dir / f"{self.trial_prefix}_trial_metrics_scalar.json"

    @property
    def root_trial_metrics_scalar_json(self) -> Path:
        return self.root / f"{self.trial_prefix}_trial_metrics_scalar.json"

    def session_df_csv(self, s: int, mode: str = "train") -> Path:
        return self.info_dir / f"{self.session_prefix(s)}_session_df_{mode}.csv"

    def session_metrics_json(self, s: int, mode: str = "train") -> Path:
        return self.info_dir / f"{self.session_prefix(s)}_session_metrics_{mode}.json"

    def session_metrics_scalar_json(self, s: int, mode: str = "train") -> Path:
        return self.info_dir / f"{self.session_prefix(s)}_session_metrics_scalar_{mode}.json"

    @property
    def graph_dir(self) -> Path:
        return self.root / "graph"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def trial_log(self) -> Path:
        return self.log_dir / f"{self.trial_prefix}.log"

    def session_log(self, s: int) -> Path:
        return self.log_dir / f"{self.session_prefix(s)}.log"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"
