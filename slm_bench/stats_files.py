"""The statistics stages' former home, kept because ``scripts/`` import them from here: they live
in ``slm_bench.steps.stats``."""

from slm_bench.steps.stats import write_cell_stats, write_table_stats

__all__ = ["write_cell_stats", "write_table_stats"]
