"""CMS56 (MIPS 376) functional status assessment for total hip replacement
(FunctionalStatusAssessmentforTotalHipReplacementFHIR 0.0.008): an instrument completed 90 days or less
before the THA and again 300-425 days after it, the THA window, exclusions at the THA; MeasureReports,
explain, and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms56.py."""

from __future__ import annotations

from .conftest import CPT, ICD10, condition, procedure, run_resources
from .oracle.cms56 import HOOS, HOOSJR, hip, paired, tha
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/FunctionalStatusAssessmentforTotalHipReplacementFHIR"


def test_a_promis10_pair_is_met_and_reports_every_population(ruleset):
    run = run_resources([*hip(), *paired()], ruleset, report="both")
    assert run.population("CMS56") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exclusion": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.0.008"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_assessment_windows_around_the_tha(ruleset):
    def outcome(initial="2024-02-20T10:00:00Z", follow="2025-01-15T10:00:00Z"):
        return run_resources([*hip(), *paired(initial, follow)], ruleset).outcome("CMS56")

    assert outcome(initial="2023-12-05T10:00:00Z") == "met"
    assert outcome(initial="2023-12-04T10:00:00Z") == "not-met"
    assert outcome(initial="2024-03-05T10:00:00Z") == "not-met"
    assert outcome(follow="2024-12-28T10:00:00Z") == "not-met"
    assert outcome(follow="2025-05-03T10:00:00Z") == "met"
    assert outcome(follow="2025-05-04T10:00:00Z") == "not-met"


def test_instruments(ruleset):
    assert run_resources([*hip(), *paired(codes=HOOS)], ruleset).outcome("CMS56") == "met"
    assert run_resources([*hip(), *paired(codes=HOOSJR)], ruleset).outcome("CMS56") == "met"


def test_tha_window_and_exclusions(ruleset):
    assert (
        run_resources(hip(tha_at="2023-10-31T10:00:00Z"), ruleset).population("CMS56")["initial-population"]
        is False
    )
    fracture = condition("fx", "S72.001A", system=ICD10, onset="2024-03-03T20:00:00Z")
    assert run_resources([*hip(), *paired(), fracture], ruleset).outcome("CMS56") == "excluded"
    revision = procedure("rev", "27134", "2024-03-04T11:00:00Z", system=CPT)
    assert run_resources([*hip(), *paired(), revision], ruleset).outcome("CMS56") == "excluded"
    second = tha("2024-09-04T08:00:00Z", rid="tha2")
    assert run_resources([*hip(), *paired(), second], ruleset).outcome("CMS56") == "excluded"


def test_no_quality_data_codes(ruleset):
    assert run_resources([*hip(), *paired()], ruleset, program="mips-claims").measure_codes("CMS56") == []


def test_explain_names_the_tha_and_both_assessments(tmp_path, capsys):
    resources = [*hip(), *paired()]
    text = explain_text(tmp_path, capsys, "CMS56", resources)
    assert "CMS56 / MIPS 376" in text
    assert "Procedure/tha" in text and "Observation/a0" in text and "Observation/b0" in text
