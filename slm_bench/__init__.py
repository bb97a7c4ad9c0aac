"""slm-bench: SLM-Lab benchmarks as a Snakemake build graph.

The logic lives here, one module per concept; the Snakemake rules and scripts only adapt it.
"""

__version__ = "0.1.0"  # the one place the version is set (pyproject.toml reads it)
