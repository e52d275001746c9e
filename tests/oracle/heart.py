"""Builders shared by the heart-failure cases (CMS144, CMS135: AHAOverall): confirmed diagnoses, a patient
with heart failure and LVSD seen twice in the period, medication orders with dosage periods."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, RXNORM, SNOMED, condition, encounter, patient, quantity_obs, request

HL7 = "http://terminology.hl7.org/CodeSystem"
VER_STATUS = f"{HL7}/condition-ver-status"
VISIT_1 = "2025-03-04T09:00:00Z"
VISIT_1_END = "2025-03-04T09:30:00Z"
VISIT_2 = "2025-06-10T09:00:00Z"


def confirmed(cid: str, code: str, *, verification: str = "confirmed", **kw: Any) -> dict[str, Any]:
    """A Condition with clinicalStatus (default active) and verificationStatus (QI-Core
    isConfirmedActiveDiagnosis reads both, with their systems)."""
    resource = condition(cid, code, **kw)
    resource["verificationStatus"] = {"coding": [{"system": VER_STATUS, "code": verification}]}
    return resource


def ejection_fraction(oid: str, value: float, when: str = "2025-02-01T10:00:00Z") -> dict[str, Any]:
    return quantity_obs(oid, "10230-1", value, "%", when, eid=None, category="imaging")


def heart_failure_patient(
    birth: str = "1960-05-01",
    *,
    ef: float | None = 35,
    hf_verification: str = "confirmed",
    visits: int = 2,
) -> list[dict[str, Any]]:
    """Heart failure (I50.1) since 2020, an ejection fraction before the visits, and office visits on 4 March
    (09:00-09:30) and 10 June 2025."""
    resources = [
        patient(birth=birth),
        confirmed("hf", "I50.1", system=ICD10, verification=hf_verification),
        encounter("e1", VISIT_1, end=VISIT_1_END),
    ]
    if visits > 1:
        resources.append(encounter("e2", VISIT_2))
    if ef is not None:
        resources.append(ejection_fraction("ef", ef))
    return resources


def medication(
    rid: str,
    code: str,
    authored: str = "2025-03-04T09:20:00Z",
    *,
    bounds: tuple[str, str | None] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A MedicationRequest (RxNorm); ``bounds``: its dosage timing.repeat.boundsPeriod (end None: open)."""
    resource = request("MedicationRequest", rid, code, authored, system=RXNORM, **kw)
    if bounds is not None:
        period = {"start": bounds[0]} if bounds[1] is None else {"start": bounds[0], "end": bounds[1]}
        resource["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": period}}}]
    return resource


def allergy_intolerance(
    code: str, *, verification: str = "confirmed", last: str | None = None, onset: str = "2023-01-01"
) -> dict[str, Any]:
    """An active AllergyIntolerance to a substance (SNOMED), from ``onset`` to ``last`` (none: ongoing)."""
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": "ai",
        "patient": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "clinicalStatus": {"coding": [{"system": f"{HL7}/allergyintolerance-clinical", "code": "active"}]},
        "verificationStatus": {
            "coding": [{"system": f"{HL7}/allergyintolerance-verification", "code": verification}]
        },
        "onsetDateTime": onset,
    }
    if last:
        resource["lastOccurrence"] = last
    return resource


def heart_rate(oid: str, value: float, when: str) -> dict[str, Any]:
    return quantity_obs(oid, "8867-4", value, "/min", when, category="vital-signs")


__all__ = [
    "SNOMED",
    "VISIT_1",
    "VISIT_1_END",
    "VISIT_2",
    "allergy_intolerance",
    "confirmed",
    "ejection_fraction",
    "heart_failure_patient",
    "heart_rate",
    "medication",
]
