"""Hypothesis settings for the property tests: derandomized (the same examples on every machine and in CI),
bounded, no example database written into the work tree."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# FHIR_CAT2_HYPOTHESIS=explore: random and ten times longer, to hunt for new failures by hand
settings.register_profile("explore", max_examples=600, deadline=None, database=None)
settings.load_profile(os.environ.get("FHIR_CAT2_HYPOTHESIS", "ci"))
