"""Hyperparameter search: from a cell that misses its target to a better spec.

``space`` reads a spec's ``search:`` block with SLM-Lab's semantics, ``driver`` runs the embedded
runner's search (Optuna), ``results`` reads any search folder into trials and the best trial, and
``patch`` writes the best values into the spec file.
"""
