"""CMS128 (MIPS 009) antidepressant medication management (AntidepressantMedicationManagementFHIR 0.1.001):
the IPSD from the first dispense in the intake period, the days its dispenses cover in the acute (84 of 115)
and continuation (180 of 232) phases, the negative medication history exclusion; MeasureReports of both
groups, explain, and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms128.py."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms128 import IPSD, SIX_MONTHS, THREE_MONTHS, depressed, dispense, fills, order
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/AntidepressantMedicationManagementFHIR"


def test_both_phases_met_and_every_population_reported(ruleset):
    run = run_resources(depressed(*SIX_MONTHS), ruleset, report="both")
    for group in (0, 1):
        assert run.population("CMS128", group=group) == {
            "initial-population": True,
            "denominator": True,
            "denominator-exclusion": False,
            "numerator": True,
        }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.1.001"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_acute_phase_needs_84_days_of_the_115(ruleset):
    def outcomes(*meds):
        run = run_resources(depressed(*meds), ruleset)
        return run.outcome("CMS128", group=0), run.outcome("CMS128", group=1)

    assert outcomes(*THREE_MONTHS) == ("met", "not-met")
    assert outcomes(*fills((IPSD, 60), ("2025-04-16", 90))) == ("met", "not-met")  # 24 days by IPSD+114
    assert outcomes(*fills((IPSD, 60), ("2025-04-17", 90))) == ("not-met", "not-met")
    # overlapping fills are collapsed, not laid end to end: 70 days, not 90
    assert outcomes(*fills((IPSD, 30), ("2025-01-25", 30), ("2025-02-24", 30))) == ("not-met", "not-met")
    assert outcomes(*SIX_MONTHS[:5], dispense("d5", "2025-06-14", 29)) == ("met", "not-met")


def test_ipsd_is_the_first_dispense_in_the_intake_period(ruleset):
    def in_population(first_fill):
        resources = depressed(*fills((first_fill, 90)), onset=first_fill, visit=first_fill)
        return run_resources(resources, ruleset).population("CMS128")["initial-population"]

    assert in_population("2024-05-01") is True
    assert in_population("2024-04-30") is False
    assert in_population("2025-04-30") is True
    assert in_population("2025-05-01") is False


def test_an_active_order_in_the_105_days_before_excludes(ruleset):
    def excluded(*extra):
        run = run_resources(depressed(*THREE_MONTHS, *extra), ruleset)
        return run.population("CMS128")["denominator-exclusion"]

    assert excluded(order("o1", "2024-09-27", 30)) is True  # IPSD-110..IPSD-81
    assert excluded(order("o1", "2024-09-02", 30)) is False  # ends IPSD-106
    assert excluded(order("o1", "2024-09-27", 30, status="completed")) is False
    assert excluded(order("o1", IPSD, 90)) is False


def test_no_quality_data_codes(ruleset):
    resources = depressed(*THREE_MONTHS)
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS128") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS128") == []


def test_explain_shows_the_days_covered(tmp_path, capsys):
    resources = depressed(*THREE_MONTHS)
    text = explain_text(tmp_path, capsys, "CMS128", resources)
    assert "CMS128 / MIPS 009" in text
    assert "MedicationDispense/d0" in text
    assert "covering 90 days of 2025-01-15..2025-05-09 (needs >= 84)" in text
    assert "covering 90 days of 2025-01-15..2025-09-03 (needs >= 180)" in text
