"""SLM-Lab's search format: from a cell that misses its target to a better spec.

``space`` reads a spec's ``search:`` block with SLM-Lab's semantics, ``results`` reads any search
folder into trials and the best trial, and ``patch`` writes the best values into the spec file.
The embedded runner's search is ``slm_bench.runners.embedded.search``; the search stages are
``slm_bench.steps.search``.
"""
