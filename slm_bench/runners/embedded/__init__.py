"""The embedded runner: an SLM-Lab spec trained with Stable-Baselines3, written as an SLM-Lab run.

It is how slm-bench runs where SLM-Lab is not installed, behind ``slm-bench run``:

- ``plan``: the spec -> SB3 mapping (``plan_training`` -> ``TrainingPlan``), reading the spec
  through ``spec_reader`` (typed fields, variable schedules) and ``net_spec`` (the net block);
- ``session``: one session's training and its checkpoints (``train_session``);
- ``trial``: the sessions in parallel, SLM-Lab's metrics and run folder (``run_trial``);
- ``console``: SLM-Lab's console and log-file lines.
"""

from slm_bench.runners.embedded.plan import CORE_COLUMNS, TrainingPlan, plan_training
from slm_bench.runners.embedded.session import build_model, make_env, train_session
from slm_bench.runners.embedded.spec_reader import Decay, FrameSchedule
from slm_bench.runners.embedded.trial import run_trial

__all__ = [
    "CORE_COLUMNS",
    "Decay",
    "FrameSchedule",
    "TrainingPlan",
    "build_model",
    "make_env",
    "plan_training",
    "run_trial",
    "train_session",
]
