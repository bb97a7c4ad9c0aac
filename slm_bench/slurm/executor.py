"""A fix to snakemake-executor-plugin-slurm (2.8.0) that the Slurm route needs, applied in the
process that runs the workflow.

The executor reads each job's state from ``sacct -X -o JobIdRaw,State``. For a job cancelled
from outside (``scancel``), sacct prints ``CANCELLED by <uid>``, which the executor does not
recognise as a failure: it keeps the job as running and the workflow never ends. The states
are cut to their first word, as Snakemake's older Slurm profile did
(Snakemake-Profiles/slurm#22). Tested by tests/test_slurm.py (scancel mid-run).
"""

from __future__ import annotations


def patch_cancelled_state() -> bool:
    """Wrap the executor's state query once; False when the executor is not installed."""
    try:
        import snakemake_executor_plugin_slurm as plugin
    except ImportError:
        return False
    original = plugin.query_job_status
    if getattr(original, "first_word_states", False):
        return True

    async def query_job_status(
        command: str, logger: object
    ) -> tuple[dict[str, str] | None, float | None]:
        states, duration = await original(command, logger)
        if states:
            states = {job: (state.split() or [""])[0] for job, state in states.items()}
        return states, duration

    query_job_status.__dict__["first_word_states"] = True  # marks the wrapper: wrapped once
    plugin.query_job_status = query_job_status
    return True
