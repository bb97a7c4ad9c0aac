"""The Slurm route (profiles/slurm): training and search jobs as Slurm jobs.

``resources`` (what a job asks for), ``cluster`` (the Slurm commands, with timeouts, and the
check before submitting), ``job`` (the job's side on the node: its record, and why Slurm stopped
it), ``jobs`` (``status`` and ``cancel`` over the recorded jobs).
"""
