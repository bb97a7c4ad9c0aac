"""The benchmark matrix: the validated config, the identifiers it may hold, the cells' seeds, and
the matrix a real SLM-Lab checkout declares."""
