"""CMS149 dementia cognitive assessment (MIPS 281, DementiaCognitiveAssessmentFHIR 0.1.000): what the
generated cases of tests/oracle/cms149.py cannot show: no claims codes, the summary report's counts (with
an exception), the explain trail, and the verification-status test the CQL applies to the dementia
diagnosis."""

from __future__ import annotations

import pytest

from fhir_cat2.explain import outcome_to_text

from .conftest import ICD10, SNOMED, coded_obs, condition, encounter, not_done_obs, patient, run_resources

URL = "https://madie.cms.gov/Measure/DementiaCognitiveAssessmentFHIR"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def demented(pid: str = "p1", verification: str | None = None):
    dementia = condition(f"{pid}-dem", "F03.90", pid=pid, system=ICD10, onset="2022-01-01")
    if verification:
        dementia["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    return [
        patient(pid, birth="1945-05-01"),
        dementia,
        encounter(f"{pid}-e1", "2025-03-04T09:00:00Z", pid=pid, end="2025-03-04T09:30:00Z"),
        encounter(f"{pid}-e2", "2025-06-01T09:00:00Z", pid=pid, system=SNOMED, cpt="185316007"),
    ]


def score(pid: str = "p1"):
    return coded_obs("mmse", "72106-8", "2025-03-04T09:10:00Z", pid=pid, value=24)


@pytest.mark.parametrize(
    ("verification", "in_population"),
    [
        (None, True),
        ("confirmed", True),
        ("provisional", True),
        ("unconfirmed", False),
        ("refuted", False),
        ("entered-in-error", False),
    ],
)
def test_dementia_must_not_be_unconfirmed_refuted_or_entered_in_error(ruleset, verification, in_population):
    """'Dementia Encounter During Measurement Period': not (verificationStatus ~ unconfirmed, refuted or
    entered-in-error); any other verification status (or none) counts."""
    run = run_resources(demented(verification=verification), ruleset)
    assert run.population("CMS149")["initial-population"] is in_population


def test_mips281_is_not_claims_reportable(ruleset):
    """MIPS 281 has no rows in CMS's claims files 2019-2025 and no HEDIS CPT II code: no codes."""
    run = run_resources([*demented(), score()], ruleset, program="mips-claims")
    assert run.population("CMS149")["numerator"] is True
    assert run.measure_codes("CMS149") == []


def test_individual_and_summary_reports_with_an_exception(ruleset):
    """Summary: 3 in the denominator, 1 exception, 1 met: score 1 / (3 - 1)."""
    resources = [
        *demented(),
        score(),
        *demented("p2"),
        *demented("p3"),
        not_done_obs("nd", "72106-8", "182890002", "2025-03-04T09:10:00Z", pid="p3"),
    ]
    run = run_resources(resources, ruleset, report="both")
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    [summary] = [r for r in reports if r["type"] == "summary"]
    group = summary["group"][0]
    assert {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]} == {
        "initial-population": 3,
        "denominator": 3,
        "numerator": 1,
        "denominator-exception": 1,
    }
    assert group["measureScore"] == {"value": 0.5}


def test_explain_names_the_dementia_visit_and_the_score(ruleset):
    """The trail names the dementia visit, the diagnosis it was judged with, and the score's window."""
    run = run_resources([*demented(), score()], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS149"], full=True)
    assert "MET" in text
    assert "Cognition assessed (with a result) within 12 months up to a dementia encounter" in text
    assert "Active, confirmed dementia overlapping the encounter" in text
    assert "Observation/mmse" in text
    assert "2024-03-04..2025-03-04" in text  # 12 months up to the visit's end
    assert "Encounter/p1-e1" in text
