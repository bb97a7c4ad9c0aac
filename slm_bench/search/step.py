"""The search stages' former home, kept because ``scripts/`` import them from here: they live in
``slm_bench.steps.search`` with the other stages."""

from slm_bench.steps.search import apply_search, search_cell, select_failed_cells

__all__ = ["apply_search", "search_cell", "select_failed_cells"]
