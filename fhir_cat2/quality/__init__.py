"""What the quality team reads and submits, built from finished runs' output folders."""
