"""CMS142 diabetic retinopathy findings communicated (MIPS 019,
DRCommunicationWithPhysicianManagingDiabetesFHIR 0.1.000): what the generated cases of tests/oracle/cms142.py
cannot show: how a Communication is read (both input paths), no claims codes, the summary report's counts (a
patient in the initial population only), the explain trail."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text
from fhir_cat2.sources.fields import to_record
from fhir_cat2.sources.records import EventRecord, Src
from fhir_cat2.sources.values import plain_resolver

from .conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient, run_resources
from .support.fieldmaps import check_reader

URL = "https://madie.cms.gov/Measure/DRCommunicationWithPhysicianManagingDiabetesFHIR"


def communication(cid: str, code: str, when: str, pid: str = "p1", **extra):
    return {
        "resourceType": "Communication",
        "id": cid,
        "status": "completed",
        "reasonCode": [{"coding": [{"system": SNOMED, "code": code}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "sent": when,
        **extra,
    }


def retinopathy_visit(pid: str = "p1", exam: bool = True):
    made = [
        patient(pid, birth="1960-05-01"),
        condition(f"{pid}-dr", "E11.319", pid=pid, system=ICD10, onset="2020-01-01"),
        encounter(f"{pid}-e1", "2025-03-04T09:00:00Z", pid=pid, end="2025-03-04T09:30:00Z"),
    ]
    if exam:
        made.append(
            coded_obs(
                f"{pid}-mac",
                "32451-7",
                "2025-03-04T09:10:00Z",
                pid=pid,
                category="exam",
                value_code="17621005",
            )
        )
    return made


def findings(pid: str = "p1"):
    return [
        communication(f"{pid}-sev", "312903003", "2025-03-05T10:00:00Z", pid),
        communication(f"{pid}-ede", "428341000124108", "2025-03-05T10:00:00Z", pid),
    ]


def test_a_communication_is_coded_by_reason_code_and_timed_by_sent():
    """QI-Core's Communication retrieve reads reasonCode; 'sent' times it; statusReason is why it was not
    done. The fast reader and the pydantic one build the same record."""
    resource = communication(
        "c",
        "312903003",
        "2025-03-05T10:00:00Z",
        status="not-done",
        statusReason={"coding": [{"system": SNOMED, "code": "183932001"}]},
    )
    record = to_record(resource, Src("test", ""), plain_resolver, "c")
    assert isinstance(record, EventRecord)
    assert record.codes == frozenset({(SNOMED, "312903003")})
    assert record.reason_codes == frozenset({(SNOMED, "183932001")})
    assert record.when is not None and record.when.start_day.isoformat() == "2025-03-05"
    assert record.not_done and record.patient_id == "p1"
    assert check_reader(resource) == "fast"


def test_mips019_gets_no_claims_codes(ruleset):
    """019 was claims-reportable in 2019 only and is not in our claims rows (see cms142.yaml)."""
    run = run_resources([*retinopathy_visit(), *findings()], ruleset, program="mips-claims")
    assert run.population("CMS142")["numerator"] is True
    assert run.measure_codes("CMS142") == []


def test_individual_and_summary_reports(ruleset):
    """A patient without the macular exam is in the initial population only: summary IP 3, denominator 2,
    numerator 1, score 1 / 2."""
    resources = [
        *retinopathy_visit(),
        *findings(),
        *retinopathy_visit("p2"),
        *retinopathy_visit("p3", exam=False),
    ]
    run = run_resources(resources, ruleset, report="both")
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    [summary] = [r for r in reports if r["type"] == "summary"]
    group = summary["group"][0]
    assert {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]} == {
        "initial-population": 3,
        "denominator": 2,
        "numerator": 1,
        "denominator-exception": 0,
    }
    assert group["measureScore"] == {"value": 0.5}


def test_explain_names_both_communications(ruleset):
    run = run_resources([*retinopathy_visit(), *findings()], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS142"], full=True)
    assert "MET" in text
    assert "Communication/p1-sev" in text and "Communication/p1-ede" in text
    assert "Level of severity of retinopathy communicated after a retinopathy encounter began" in text
