"""The ``cancel`` stage: the project's remote work stopped, on dstack and on Slurm."""

from __future__ import annotations


def cancel_remote(matrix, on_slurm: bool, log) -> None:
    """The ``cancel`` target: every dstack run the journals record, then (on the Slurm route or
    when cells ran there) every Slurm job of this project that still runs or waits."""
    from slm_bench.runners.dstack import cancel_cells
    from slm_bench.slurm.jobs import cancel_jobs

    cancel_cells(matrix.cells, log)
    cancel_jobs(matrix.cells, on_slurm, log)
