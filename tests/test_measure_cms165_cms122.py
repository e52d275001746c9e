"""CMS165 and CMS122 individual results and MeasureReports (CQL: ControllingHighBloodPressureFHIR 0.1.000,
DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR 0.1.002)."""

from __future__ import annotations

import pytest

from .conftest import a1c, bp_panel, condition, encounter, patient, run_resources


def htn_patient(birth: str = "1960-06-01", **enc):
    return [patient(birth=birth), condition("htn", "I10", onset="2019-01-01"), encounter(**enc)]


def dm_patient(birth: str = "1960-06-01"):
    return [patient(birth=birth), condition("dm", "E11.9", onset="2019-01-01"), encounter()]


def test_cms165_numerator_lowest_on_most_recent_day_with_both(ruleset):
    """Numerator: lowest SBP < 140 and lowest DBP < 90 on the most recent day having both."""
    resources = [
        *htn_patient(),
        encounter("e2", "2025-06-01T09:00:00Z"),
        bp_panel("bp1", 150, 95, "2025-03-04T09:00:00Z"),
        bp_panel("bp2", 145, 85, "2025-06-01T09:00:00Z", eid="e2"),
        bp_panel("bp3", 132, 95, "2025-06-01T10:00:00Z", eid="e2"),
    ]
    assert run_resources(resources, ruleset).population("CMS165")["numerator"] is True


def test_cms165_day_needs_both_systolic_and_diastolic(ruleset):
    resources = [
        *htn_patient(),
        encounter("e2", "2025-06-01T09:00:00Z"),
        bp_panel("bp1", 150, 95, "2025-03-04T09:00:00Z"),
        bp_panel("bp2", 120, None, "2025-06-01T09:00:00Z", eid="e2"),  # systolic only: not a BP day
    ]
    assert run_resources(resources, ruleset).population("CMS165")["numerator"] is False


@pytest.mark.parametrize(
    ("systolic", "diastolic", "met"), [(139, 89, True), (140, 89, False), (139, 90, False)]
)
def test_cms165_thresholds(ruleset, systolic, diastolic, met):
    resources = [*htn_patient(), bp_panel("bp", systolic, diastolic)]
    assert run_resources(resources, ruleset).population("CMS165")["numerator"] is met


def test_cms165_emergency_reading_does_not_count(ruleset):
    resources = [
        *htn_patient(),
        bp_panel("bp1", 150, 95, "2025-03-04T09:00:00Z"),
        encounter("er", "2025-08-01T09:00:00Z", klass="EMER", cpt="99284"),
        bp_panel("bp-er", 120, 70, "2025-08-01T09:30:00Z", eid="er"),
    ]
    assert run_resources(resources, ruleset).population("CMS165")["numerator"] is False


@pytest.mark.parametrize(
    ("birth", "in_population"),
    [("2007-12-31", True), ("2008-01-01", False), ("1940-01-01", True), ("1939-12-31", False)],
)
def test_cms165_age_18_to_85_at_end_of_period(ruleset, birth, in_population):
    resources = [*htn_patient(birth=birth), bp_panel("bp", 120, 70)]
    assert run_resources(resources, ruleset).population("CMS165")["initial-population"] is in_population


def test_cms165_hypertension_must_overlap_the_first_six_months(ruleset):
    late = [patient(birth="1960-01-01"), condition("htn", "I10", onset="2025-07-01"), encounter()]
    assert run_resources(late, ruleset).population("CMS165")["initial-population"] is False
    june = [patient(birth="1960-01-01"), condition("htn", "I10", onset="2025-06-30"), encounter()]
    assert run_resources(june, ruleset).population("CMS165")["initial-population"] is True


def test_cms165_needs_a_qualifying_outpatient_encounter(ruleset):
    resources = [patient(), condition("htn", "I10"), encounter(cpt="99284", klass="EMER")]
    assert run_resources(resources, ruleset).population("CMS165")["initial-population"] is False


def test_cms165_pregnancy_excludes(ruleset):
    resources = [*htn_patient(), condition("preg", "O09.01", onset="2025-02-01"), bp_panel("bp", 120, 70)]
    populations = run_resources(resources, ruleset).population("CMS165")
    assert populations["denominator-exclusion"] is True and populations["numerator"] is False


@pytest.mark.parametrize(("value", "numerator"), [(9.0, False), (9.1, True), (6.0, False)])
def test_cms122_numerator_is_poor_control(ruleset, value, numerator):
    resources = [*dm_patient(), a1c("a", value)]
    assert run_resources(resources, ruleset).population("CMS122")["numerator"] is numerator


def test_cms122_no_test_counts_as_poor_control(ruleset):
    assert run_resources(dm_patient(), ruleset).population("CMS122")["numerator"] is True


def test_cms122_most_recent_without_a_value_counts_as_poor_control(ruleset):
    resources = [
        *dm_patient(),
        a1c("old", 6.0, "2025-02-01T08:00:00Z"),
        a1c("new", None, "2025-03-04T08:00:00Z", absent=True),
    ]
    assert run_resources(resources, ruleset).population("CMS122")["numerator"] is True


@pytest.mark.parametrize(
    ("birth", "in_population"), [("2007-12-31", True), ("1950-01-01", True), ("1949-12-31", False)]
)
def test_cms122_age_18_to_75(ruleset, birth, in_population):
    resources = [patient(birth=birth), condition("dm", "E11.9"), encounter()]
    assert run_resources(resources, ruleset).population("CMS122")["initial-population"] is in_population


def _reports_for(run, url_part):
    return [r for r in run.reports if url_part in r["measure"]]


def test_reports_only_for_patients_in_an_initial_population(ruleset):
    """DEQM: only patients meeting an Initial Population get individual reports (domain.md §2.2)."""
    run = run_resources([patient(), encounter(), bp_panel("bp", 120, 70)], ruleset)
    assert _reports_for(run, "ControllingHighBloodPressure") == []
    assert _reports_for(run, "DiabetesGlycemicStatus") == []


def test_individual_report_shape(ruleset):
    resources = [*htn_patient(), bp_panel("bp", 128, 78)]
    [report] = _reports_for(run_resources(resources, ruleset), "ControllingHighBloodPressure")
    assert report["type"] == "individual" and report["status"] == "complete"
    assert report["subject"] == {"reference": "Patient/p1"}
    assert report["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert counts == {"initial-population": 1, "denominator": 1, "denominator-exclusion": 0, "numerator": 1}
    refs = {r["reference"] for r in report["evaluatedResource"]}
    assert {"Observation/bp", "Condition/htn", "Encounter/e1"} <= refs
