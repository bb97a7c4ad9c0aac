"""What makes a result trustworthy: failure records, one writer per cell, what produced a run, and
the spec audit."""
