"""Builds made while each rule ran a script of its own stay up to date.

Snakemake records a job's code with its outputs and reruns the job when the rule's code differs:
for a rule that ran ``script: "../scripts/NAME.py"`` the record holds that directive's text,
for a shell rule its command. Every rule now runs the one job entry (``slm_bench/jobs.py``)
doing what its script did, byte for byte, so a record of a former script directive is not a
code change: without this, the first plan after the change would redo every cell's spec and,
through it, retrain every cell. Any other difference (a changed command) still is one.
"""

from __future__ import annotations

import re

FORMER_SCRIPT = re.compile(r'\s*"\.\./scripts/\w+\.py"\s*')


def is_former_script(recorded: str | None) -> bool:
    """Whether recorded code is the directive of a rule's former script."""
    return recorded is not None and FORMER_SCRIPT.fullmatch(recorded) is not None


def accept_script_records() -> None:
    """Make Snakemake's code comparison take a former script directive as unchanged."""
    from snakemake.persistence import PersistenceBase as Persistence

    compare = Persistence._code_changed
    if getattr(compare, "accepts_script_records", False):
        return

    def _code_changed(self: Persistence, job: object, file: object = None) -> bool:
        if is_former_script(self.code(file)):
            return False
        return compare(self, job, file=file)

    _code_changed.accepts_script_records = True  # type: ignore[attr-defined]
    Persistence._code_changed = _code_changed
