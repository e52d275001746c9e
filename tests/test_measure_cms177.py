"""CMS177 (MIPS 382) child and adolescent MDD suicide risk assessment
(ChildandAdolescentMajorDepressiveDisorderMDDSuicideRiskAssessmentFHIR 0.1.000): each MDD visit is an
episode; MeasureReports, explain, and no claims codes (MIPS 382 is EHR-only)."""

from __future__ import annotations

from .conftest import ICD10, condition, encounter, patient, procedure, run_resources
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/ChildandAdolescentMajorDepressiveDisorderMDDSuicideRiskAssessmentFHIR"
CHILD = "2012-06-01"


def mdd_visit(eid: str = "e1", start: str = "2025-03-04T09:00:00Z", *, reason: str | None = "F32.1", **kw):
    resource = encounter(eid, start, end=start.replace("T09:00", "T09:50"), **kw)
    if reason is not None:
        resource["reasonCode"] = [{"coding": [{"system": ICD10, "code": reason}]}]
    return resource


def assessed(when: str = "2025-03-04T09:30:00Z", **kw):
    return procedure("sra", "225337009", when, **kw)


def test_the_visit_reason_or_its_diagnosis_makes_it_an_mdd_visit(ruleset):
    """'reasonCode in MDD or exists encounterDiagnosis() in MDD': an MDD condition not on the visit does
    not count."""
    by_reason = run_resources([patient(birth=CHILD), mdd_visit(), assessed()], ruleset)
    assert by_reason.counts("CMS177") == {"initial-population": 1, "denominator": 1, "numerator": 1}
    mdd = condition("mdd", "F32.1", onset="2025-01-10")
    by_diagnosis = run_resources(
        [patient(birth=CHILD), mdd, mdd_visit(reason=None, diagnoses=["mdd"])], ruleset
    )
    assert by_diagnosis.counts("CMS177")["initial-population"] == 1
    unrelated = run_resources([patient(birth=CHILD), mdd, mdd_visit(reason=None)], ruleset)
    assert unrelated.counts("CMS177")["initial-population"] == 0


def test_age_6_to_16_at_the_start_of_the_period(ruleset):
    for birth, in_population in (("2019-01-01", 1), ("2019-01-02", 0), ("2008-01-02", 1), ("2008-01-01", 0)):
        run = run_resources([patient(birth=birth), mdd_visit()], ruleset)
        assert run.counts("CMS177")["initial-population"] == in_population, birth


def test_each_mdd_visit_is_an_episode_and_the_assessment_must_be_during_it(ruleset):
    resources = [
        patient(birth=CHILD),
        mdd_visit(),
        mdd_visit("e2", "2025-05-06T09:00:00Z", cpt="90834"),
        assessed("2025-05-06T09:20:00Z"),
    ]
    run = run_resources(resources, ruleset, report="both")
    assert run.counts("CMS177") == {"initial-population": 2, "denominator": 2, "numerator": 1}
    assert (
        len([r for r in run.reports if r["measure"] == f"{URL}|0.1.000" and r["type"] == "individual"]) == 1
    )
    [summary] = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000" and r["type"] == "summary"]
    assert summary["group"][0]["measureScore"] == {"value": 0.5}
    next_day = run_resources([patient(birth=CHILD), mdd_visit(), assessed("2025-03-05T09:30:00Z")], ruleset)
    assert next_day.counts("CMS177")["numerator"] == 0


def test_no_claims_codes(ruleset):
    """MIPS 382 is not in the claims single-source files 2019-2025."""
    run = run_resources([patient(birth=CHILD), mdd_visit(), assessed()], ruleset, program="mips-claims")
    assert run.measure_codes("CMS177") == []


def test_explain_says_why_the_visit_is_an_episode(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS177", [patient(birth=CHILD), mdd_visit()])
    assert "not-met 1 (one result per encounter)" in text
    assert (
        "The visit's reason is major depressive disorder: 1 matching Encounter (the encounter itself)" in text
    )
    assert "no matching Procedure" in text
