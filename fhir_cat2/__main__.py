"""``python -m fhir_cat2``: the same as the ``fhir-cat2`` command (handy where scripts are not on PATH)."""

import sys

from .cli import main

sys.exit(main())
