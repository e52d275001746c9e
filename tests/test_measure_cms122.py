"""CMS122 (MIPS 001) glycemic status > 9%, an inverse measure: boundaries of DiabetesGlycemicStatusAssessment-
GreaterThan9PercentFHIR 0.1.002 beyond test_measure_cms165_cms122.py."""

from __future__ import annotations

import pytest

from .conftest import a1c, condition, encounter, patient, request, run_resources


def dm(birth: str = "1960-06-01", **enc):
    return [patient(birth=birth), condition("dm", "E11.9", onset="2019-01-01"), encounter(**enc)]


def members(run):
    return run.population("CMS122")


def test_lowest_result_on_the_most_recent_day_decides(ruleset):
    """'Lowest Glycemic Status Assessment Reading on Most Recent Day': 9.5 then 8.0 and 9.8 the same later
    day."""
    resources = [
        *dm(),
        a1c("early", 6.0, "2025-02-01T08:00:00Z", eid=None),
        a1c("late-high", 9.8, "2025-09-01T08:00:00Z", eid=None),
        a1c("late-low", 8.0, "2025-09-01T15:00:00Z", eid=None),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is False


def test_a_result_without_value_on_the_most_recent_day_counts_as_no_result(ruleset):
    """CQL sorts null values first: a valueless result on the latest day is 'the lowest' -> without result."""
    resources = [
        *dm(),
        a1c("v", 6.0, "2025-09-01T08:00:00Z", eid=None),
        a1c("n", None, "2025-09-01T09:00:00Z", eid=None, absent=True),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is True


def test_text_result_counts_as_a_result_without_value(ruleset):
    """'value as Quantity' of a valueString is null: the most recent assessment has no result -> numerator."""
    text = a1c("t", None, "2025-09-01T08:00:00Z", eid=None)
    text["valueString"] = "<7.0"
    run = run_resources([*dm(), a1c("old", 6.0, "2025-02-01T08:00:00Z", eid=None), text], ruleset)
    assert members(run)["numerator"] is True
    assert any("counted as a result without a usable value" in q.reason for q in run.sink.quarantined)


def test_result_with_comparator_counts_as_without_value(ruleset):
    """Ranges and thresholds are not distinct results (CMS122 usage): '<7' counts as no usable value."""
    resources = [*dm(), a1c("c", 7.0, "2025-09-01T08:00:00Z", eid=None, comparator="<")]
    assert members(run_resources(resources, ruleset))["numerator"] is True


def test_category_laboratory_is_required(ruleset):
    """Status.isLaboratoryTestPerformed: category laboratory; an uncategorised 6.0 does not count -> no
    record."""
    resources = [*dm(), a1c("nocat", 6.0, "2025-09-01T08:00:00Z", eid=None, category=None)]
    assert members(run_resources(resources, ruleset))["numerator"] is True


def test_gmi_counts_as_glycemic_status(ruleset):
    """Glucose management indicator LOINC 97506-0 is a glycemic status assessment."""
    resources = [*dm(), a1c("gmi", 7.2, "2025-09-01T08:00:00Z", eid=None, code="97506-0")]
    assert members(run_resources(resources, ruleset))["numerator"] is False


def test_ifcc_units_are_converted_before_the_comparison(ruleset):
    """Deviation unit-conversion: mmol/mol is converted (NGSP% = 0.0915 x IFCC + 2.15); 80 mmol/mol = 9.47%
    > 9. By the published logic (the default) the CQL compares by UCUM: 80 mmol/mol = 8.0 %, not above 9."""
    resources = [*dm(), a1c("ifcc", 80, "2025-09-01T08:00:00Z", eid=None, unit="mmol/mol")]
    on = frozenset({"unit-conversion"})
    assert members(run_resources(resources, ruleset, deviations=on))["numerator"] is True
    assert members(run_resources(resources, ruleset))["numerator"] is False


@pytest.mark.parametrize(
    ("birth", "in_population"),
    [("1950-01-01", True), ("1949-12-31", False), ("2007-12-31", True), ("2008-01-01", False)],
)
def test_age_18_to_75_at_end_of_period(ruleset, birth, in_population):
    """AgeInYearsAt(end of MP) in [18, 75]."""
    assert members(run_resources(dm(birth=birth), ruleset))["initial-population"] is in_population


def test_diabetes_must_overlap_the_period(ruleset):
    """Diabetes prevalenceInterval overlaps day of MP; an onset after the period does not."""
    resources = [patient(), condition("dm", "E11.9", onset="2026-01-02"), encounter()]
    assert members(run_resources(resources, ruleset))["initial-population"] is False


def test_81_plus_with_frailty_alone_does_not_exclude(ruleset):
    """CMS122 uses 'Is Age 66 or Older with Advanced Illness and Frailty': no frailty-only branch at 81+."""
    resources = [*dm(birth="1943-01-01"), condition("frail", "M62.81", onset="2025-02-01")]
    run = run_resources(resources, ruleset)
    assert members(run)["initial-population"] is False  # 82 is outside 18-75 anyway
    resources = [*dm(birth="1955-01-01"), condition("frail", "M62.81", onset="2025-02-01")]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is False


def test_66_plus_with_frailty_and_advanced_illness_excludes(ruleset):
    """'Is Age 66 or Older with Advanced Illness and Frailty': age 70 at end of period."""
    resources = [
        *dm(birth="1955-01-01"),
        condition("frail", "M62.81", onset="2025-02-01"),
        condition("ai", "C25.0", onset="2025-01-10"),
    ]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True


def test_hospice_order_excludes(ruleset):
    """Hospice: an order for hospice care (Hospice Care Ambulatory) authored in the period."""
    resources = [*dm(), request("ServiceRequest", "h", "385763009", "2025-10-01T09:00:00Z")]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True
