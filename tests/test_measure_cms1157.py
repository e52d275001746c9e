"""CMS1157 (MIPS 340) HIV annual retention in care (HIVRetentionFHIR 0.1.000): two visits with HIV, or a
visit with HIV and a viral load test, at least 90 days apart; individual and summary MeasureReports, explain,
and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms1157.py."""

from __future__ import annotations

import pytest

from .conftest import run_resources
from .oracle.cms1157 import DAY_89, DAY_90, in_care, visit
from .oracle.hiv import viral_load
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/HIVRetentionFHIR"


def test_two_visits_90_days_apart_are_met(ruleset):
    run = run_resources([*in_care(), visit("e2", DAY_90)], ruleset, report="both")
    assert run.population("CMS1157") == {"initial-population": True, "denominator": True, "numerator": True}
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


@pytest.mark.parametrize(
    ("later", "outcome"),
    [
        (visit("e2", DAY_90), "met"),
        (visit("e2", DAY_89), "not-met"),
        (viral_load(when=DAY_90), "met"),
        (viral_load(when=DAY_89), "not-met"),
    ],
    ids=["visit-90", "visit-89", "viral-load-90", "viral-load-89"],
)
def test_ninety_days_on_either_side(ruleset, later, outcome):
    assert run_resources([*in_care(), later], ruleset).outcome("CMS1157") == outcome


def test_a_viral_load_90_days_before_the_visit_counts(ruleset):
    early = viral_load(when="2025-01-05T10:00:00Z")
    assert run_resources([*in_care(first="2025-04-05T09:00:00Z"), early], ruleset).outcome("CMS1157") == "met"
    too_close = viral_load(when="2025-01-06T10:00:00Z")
    assert run_resources([*in_care(first="2025-04-05T09:00:00Z"), too_close], ruleset).outcome("CMS1157") == (
        "not-met"
    )


def test_no_quality_data_codes(ruleset):
    resources = [*in_care(), visit("e2", DAY_90)]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS1157") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS1157") == []


def test_explain_names_both_branches(tmp_path, capsys):
    resources = [*in_care(), visit("e2", DAY_89)]
    text = explain_text(tmp_path, capsys, "CMS1157", resources)
    assert "CMS1157 / MIPS 340" in text
    assert "Two visits with HIV at least 90 days apart" in text
    assert "A visit with HIV and an HIV viral load test at least 90 days apart" in text
