"""CMS90 (MIPS 377) functional status assessments for heart failure
(FunctionalStatusAssessmentsforHeartFailureFHIR 0.1.000): an instrument completed (all its scores the same
day) before a visit and again 30-180 days later, the two-visit population, exclusions; MeasureReports,
explain, and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms90.py."""

from __future__ import annotations

from .conftest import SNOMED, condition, run_resources
from .oracle.cms90 import INITIAL, KCCQ_TOTAL, PROMIS29, VR12_OBLIQUE, assessed, heart_failure, paired
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/FunctionalStatusAssessmentsforHeartFailureFHIR"


def test_a_promis10_pair_is_met_and_reports_every_population(ruleset):
    run = run_resources([*heart_failure(), *paired()], ruleset, report="both")
    assert run.population("CMS90") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exclusion": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_follow_up_window_is_30_to_180_days_after_the_first(ruleset):
    def outcome(follow):
        return run_resources([*heart_failure(), *paired(follow=follow)], ruleset).outcome("CMS90")

    assert outcome("2025-03-30T10:00:00Z") == "not-met"
    assert outcome("2025-03-31T10:00:00Z") == "met"
    assert outcome("2025-08-28T10:00:00Z") == "met"
    assert outcome("2025-08-29T10:00:00Z") == "not-met"


def test_every_score_of_the_instrument_is_needed_on_the_day(ruleset):
    whole = [*heart_failure(), *paired(codes=PROMIS29)]
    assert run_resources(whole, ruleset).outcome("CMS90") == "met"
    lacking = [*heart_failure(), *assessed("a", INITIAL, PROMIS29, skip=3), *paired(codes=PROMIS29)[7:]]
    assert run_resources(lacking, ruleset).outcome("CMS90") == "not-met"
    assert run_resources([*heart_failure(), *paired(codes=KCCQ_TOTAL)], ruleset).outcome("CMS90") == "met"


def test_the_follow_up_is_the_same_instrument(ruleset):
    mixed = [*heart_failure(), *assessed("a", INITIAL), *assessed("b", "2025-05-01T10:00:00Z", VR12_OBLIQUE)]
    assert run_resources(mixed, ruleset).outcome("CMS90") == "not-met"


def test_one_visit_is_not_enough_and_cognitive_impairment_excludes(ruleset):
    one = heart_failure(visits=("2025-03-04T09:00:00Z",))
    assert run_resources([*one, *paired()], ruleset).population("CMS90")["initial-population"] is False
    impaired = condition("sci", "702956004", system=SNOMED, onset="2024-05-01")
    assert run_resources([*heart_failure(), *paired(), impaired], ruleset).outcome("CMS90") == "excluded"


def test_no_quality_data_codes(ruleset):
    resources = [*heart_failure(), *paired()]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS90") == []


def test_explain_names_the_visit_and_both_assessments(tmp_path, capsys):
    resources = [*heart_failure(), *paired()]
    text = explain_text(tmp_path, capsys, "CMS90", resources)
    assert "CMS90 / MIPS 377" in text
    assert "Encounter/e1" in text and "Observation/a0" in text and "Observation/b0" in text
