"""Where the build and each cell stand: the status table and the build's progress line."""
