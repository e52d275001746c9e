"""Sources: files (and later servers) -> slim records grouped by patient."""
