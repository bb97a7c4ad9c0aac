"""The one place that knows Snakemake's ``snakemake`` script object.

``run_step`` runs a stage with the rule's log open, and turns a ``BenchError`` into one line on
stderr and in the log plus a non-zero exit, which is all a user needs to see.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from slm_bench.config import Cell
from slm_bench.errors import BenchError


def cell(smk) -> Cell:
    """The (env, algo) cell of the running job, from its ``cell`` param."""
    return Cell.from_params(smk.params.cell, smk.config)


def run_step(smk, step: Callable, *args, **kwargs) -> None:
    log_path = Path(smk.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:

        def say(message: str) -> None:
            print(message, file=log, flush=True)
            print(message, file=sys.stderr, flush=True)

        if "log" in step.__code__.co_varnames:
            kwargs["log"] = say
        try:
            step(*args, **kwargs)
        except BenchError as error:
            say(f"error: {error}")
            sys.exit(1)
        except Exception:
            log.write(traceback.format_exc())
            raise
