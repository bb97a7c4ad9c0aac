# Input functions of the search rules (rules/search.smk).
import json


def search_threads(wildcards):
    """Trials run in parallel within the rule's threads (all the cores Snakemake was given; on
    Slurm, one CPU per session of the cell)."""
    return session_threads(wildcards) if on_slurm() else TRAIN_CORES


def all_cell_keys(wildcards):
    """``env/algo`` of every cell, in the order of all_rows."""
    return [f"{env}/{algo}" for env, algo in MATRIX.cells]


def failed_cell_searches(wildcards):
    """The search outputs of every cell whose row is not solved (known once the rows exist)."""
    selected = checkpoints.select_failed_cells.get().output.cells
    with open(selected, encoding="utf-8") as handle:
        return [f"results/{key}/search/best.json" for key in json.load(handle)]
