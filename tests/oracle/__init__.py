"""Generated patients cross-checked with the reference engine (see ``cases``)."""
