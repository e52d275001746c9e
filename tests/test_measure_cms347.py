"""CMS347 (MIPS 438) statin therapy, four groups: one MeasureReport with the four groups and their own
initial populations, a summary per group, no quality-data codes (438 is EHR/registry only), the explain
trail, and the AdverseEvent it reads (searched by subject); populations are cross-checked in tests/oracle."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text
from fhir_cat2.sources.fields import to_record
from fhir_cat2.sources.records import EventRecord, Src
from fhir_cat2.sources.server import default_types, patient_param
from fhir_cat2.sources.values import plain_resolver

from .conftest import run_resources
from .oracle.cms347 import ATORVASTATIN, ascvd, cvd_risk, ldl, problem, seen, statin, statin_allergy
from .support.fieldmaps import check_reader

URL = "https://madie.cms.gov/Measure/StatinTherapyforthePreventionandTreatmentofCardiovascularDiseaseFHIR"


def _report(run, kind: str = "individual"):
    (report,) = [r for r in run.reports if r["measure"].startswith(URL)]
    assert report["type"] == kind
    return report


def test_one_report_with_the_four_groups_and_their_own_counts(ruleset):
    run = run_resources([*seen("1975-03-01"), problem("dm", "E11.9"), statin()], ruleset)
    _report(run)
    counts = [run.counts("CMS347", group=i) for i in range(4)]
    assert [c["initial-population"] for c in counts] == [0, 0, 1, 0]  # diabetes only: group 3
    assert (counts[2]["denominator"], counts[2]["numerator"]) == (1, 1)


def test_a_subsequent_nstemi_with_a_high_ldl_is_in_groups_1_and_2(ruleset):
    run = run_resources([*seen(), problem("nstemi", "I22.2", onset="2024-02-01"), ldl(200)], ruleset)
    assert [run.counts("CMS347", group=i)["initial-population"] for i in range(4)] == [1, 1, 0, 0]


def _as_patient(pid: str, resources: list[dict]) -> list[dict]:
    """Resources built for patient p1 (whose references are all ``subject``) as patient ``pid``'s."""
    made = []
    for resource in resources:
        if resource["resourceType"] == "Patient":
            made.append({**resource, "id": pid})
        else:
            made.append(
                {**resource, "id": f"{pid}-{resource['id']}", "subject": {"reference": f"Patient/{pid}"}}
            )
    return made


def test_summary_scores_each_group_and_leaves_empty_ones_unscored(ruleset):
    treated_ascvd = [*ascvd(), statin()]
    untreated_risk = _as_patient("p2", [*seen("1975-03-01"), cvd_risk(25)])
    summary = _report(run_resources([*treated_ascvd, *untreated_risk], ruleset, report="summary"), "summary")
    scores = [g.get("measureScore", {}).get("value") for g in summary["group"]]
    assert scores == [1.0, None, None, 0.0]


def test_no_quality_data_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources([*ascvd(), statin()], ruleset, program="mips-claims")
    assert run.measure_codes("CMS347") == []
    assert ruleset.measure("CMS347").groups[0].claims == ()


def test_explain_names_the_exception_and_the_allergy(ruleset):
    run = run_resources([*ascvd(), statin_allergy()], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS347"], full=True)
    assert "Active statin allergy whose onset overlaps the period" in text
    assert "AllergyIntolerance/allergy" in text
    assert "Statin ordered (active or completed order) during the period" in text


def test_an_adverse_event_is_read_fast_and_searched_by_subject(ruleset):
    event = {
        "resourceType": "AdverseEvent",
        "id": "ae",
        "actuality": "actual",
        "event": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": ATORVASTATIN}]
        },
        "subject": {"reference": "Patient/p1"},
        "recordedDate": "2025-04-01T10:00:00Z",
    }
    assert check_reader(event) == "fast"
    record = to_record(event, Src("test", ""), plain_resolver, "ae")
    assert isinstance(record, EventRecord) and record.patient_id == "p1"
    assert record.when is not None and record.when.start_day.isoformat() == "2025-04-01"
    assert "AdverseEvent" in default_types(ruleset.relevant_codes())
    assert patient_param("AdverseEvent", set()) == "subject"


def test_explain_shows_every_dosage_period_of_the_statin(ruleset):
    order = statin(
        authored="2023-01-01T09:00:00Z", bounds=[("2023-01-01", "2023-12-31"), ("2024-12-01", None)]
    )
    run = run_resources([*ascvd(), order], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS347"], full=True)
    assert "[x] Statin order (active or completed) with a dosage bounds period overlapping the period" in text
    assert (
        "MedicationRequest/statin: code 617310, status active, 2023-01-01..2023-12-31; 2024-12-01..(open)"
        in text
    )
