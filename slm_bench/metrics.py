"""SLM-Lab's metric definitions (session and trial metrics) and the keys they are reported under."""

from __future__ import annotations

# Trial scalar keys, in SLM-Lab's order (the order of the `trial_metrics:` log line too).
SCALAR_KEYS = (
    "frame",
    "total_reward_ma",
    "strength",
    "max_strength",
    "final_strength",
    "sample_efficiency",
    "training_efficiency",
    "stability",
    "consistency",
)
