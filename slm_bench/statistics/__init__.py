"""How much to trust a score: per-session statistics, sessions that never learned, and the
comparison against a reference table."""
