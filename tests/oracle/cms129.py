"""CMS129 prostate cancer, avoidance of bone scan overuse for low risk patients: generated cases (see
``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, LOINC, SNOMED, coded_obs, condition, patient, procedure, quantity_obs
from .cases import case

M = "CMS129"
TREATMENT = "55810"  # in Prostate Cancer Treatment 2.16.840.1.113883.3.526.3.398
T1C = "433351000124101"
T3 = "433371000124106"  # a later stage, not in the four the measure counts
BONE_SCAN = "39883-4"  # in Bone Scan 2.16.840.1.113883.3.526.3.320
REASON = "433611000124109"  # Procedure reason record


def cancer(onset: str = "2024-10-01T10:00:00Z", category: str = "problem-list-item") -> dict[str, Any]:
    return condition("ca", "C61", onset=onset, category=category)


def treatment(when: str = "2025-04-10T10:00:00Z", rid: str = "tx", **kw: Any) -> dict[str, Any]:
    return procedure(rid, TREATMENT, when, system=CPT, **kw)


def staging(value: str = T1C, when: str = "2025-02-01T10:00:00Z", oid: str = "stage") -> dict[str, Any]:
    return coded_obs(oid, "254292007", when, system=SNOMED, value_code=value, category="laboratory")


def psa(value: float = 6.2, when: str = "2025-01-15T10:00:00Z", oid: str = "psa") -> dict[str, Any]:
    return quantity_obs(oid, "2857-1", value, "ng/mL", when, eid=None)


def gleason(value: int = 6, when: str = "2025-02-01T11:00:00Z", oid: str = "gleason") -> dict[str, Any]:
    return coded_obs(oid, "35266-6", when, value=value, value_kind="integer", category="laboratory")


def bone_scan(when: str = "2025-03-01T10:00:00Z", reason: bool = False) -> dict[str, Any]:
    scan = coded_obs("scan", BONE_SCAN, when, system=LOINC, category="imaging")
    if reason:
        scan["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": REASON}]}
    return scan


def low_risk(**kw: Any) -> list[dict[str, Any]]:
    return [patient(birth="1955-03-01", gender="male"), cancer(), treatment(), staging(), psa(), gleason()]


case("cms129-low-risk-no-scan", M, "low risk, no bone scan: numerator", low_risk())
case(
    "cms129-low-risk-scan",
    M,
    "low risk with a bone scan after the diagnosis: not met",
    [*low_risk(), bone_scan()],
)
case(
    "cms129-scan-with-reason",
    M,
    "bone scan with a documented reason: exception",
    [
        *low_risk(),
        bone_scan(reason=True),
    ],
)
case(
    "cms129-scan-before-diagnosis",
    M,
    "bone scan before the cancer began: does not count, numerator",
    [
        *low_risk(),
        bone_scan("2024-09-01T10:00:00Z"),
    ],
)
case(
    "cms129-no-treatment",
    M,
    "no treatment in the period: initial population only",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        staging(),
        psa(),
        gleason(),
    ],
)
case(
    "cms129-psa-10",
    M,
    "PSA exactly 10 ng/mL: not low, not in the denominator",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        treatment(),
        staging(),
        psa(10),
        gleason(),
    ],
)
case(
    "cms129-gleason-7",
    M,
    "Gleason 7: not low",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        treatment(),
        staging(),
        psa(),
        gleason(7),
    ],
)
case(
    "cms129-latest-staging-t3",
    M,
    "the most recent staging before treatment is T3: not low risk",
    [
        *low_risk(),
        staging(T3, "2025-03-15T10:00:00Z", oid="stage2"),
    ],
)
case(
    "cms129-staging-after-treatment",
    M,
    "the only staging is after the first treatment: not in the denominator",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        treatment(),
        staging(when="2025-05-01T10:00:00Z"),
        psa(),
        gleason(),
    ],
)
case(
    "cms129-psa-after-staging",
    M,
    "the only PSA is after the staging: no PSA before it, not in the denominator",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        treatment(),
        staging(),
        psa(when="2025-02-20T10:00:00Z"),
        gleason(),
    ],
)
case(
    "cms129-latest-psa-decides",
    M,
    "PSA 12 then 6.2 before staging: the most recent (6.2) is low",
    [
        *low_risk(),
        psa(12, "2024-12-01T10:00:00Z", oid="psa0"),
    ],
)
case(
    "cms129-first-treatment-decides",
    M,
    "a second treatment after a later T3 staging: the first one decides",
    [
        *low_risk(),
        staging(T3, "2025-06-01T10:00:00Z", oid="stage2"),
        treatment("2025-07-01T10:00:00Z", rid="tx2"),
    ],
)
case(
    "cms129-encounter-diagnosis",
    M,
    "prostate cancer only as an encounter diagnosis: not in the initial population",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(category="encounter-diagnosis"),
        treatment(),
        staging(),
        psa(),
        gleason(),
    ],
)
case(
    "cms129-pain-exception",
    M,
    "bone pain on the problem list after the diagnosis: exception",
    [
        *low_risk(),
        bone_scan(),
        condition("pain", "G89.3", onset="2025-02-15T10:00:00Z", category="problem-list-item", system=ICD10),
    ],
)
case(
    "cms129-salvage-exception",
    M,
    "salvage therapy after the diagnosis: exception",
    [
        *low_risk(),
        bone_scan(),
        procedure("salv", "55860", "2025-08-01T10:00:00Z", system=CPT),
    ],
)
