"""CMS68 documentation of current medications: generated cases (see ``cases``); each qualifying encounter is
an episode."""

from __future__ import annotations

from typing import Any

from ..conftest import QICORE, SNOMED, encounter, patient, procedure
from .cases import case

M = "CMS68"
MEDS = "428191000124101"  # Documentation of current medications (procedure)
MEDICAL_REASON = "183932001"  # in Medical Reason 2.16.840.1.113883.3.526.3.1007
VISIT = "2025-03-04T09:00:00Z"
VISIT_END = "2025-03-04T09:40:00Z"


def visit(eid: str = "e1", start: str = VISIT, end: str = VISIT_END, **kw: Any) -> dict[str, Any]:
    return encounter(eid, start, end=end, **kw)


def not_documented(rid: str, recorded: str | None, reason: str | None = MEDICAL_REASON) -> dict[str, Any]:
    """QI-Core ProcedureNotDone: status not-done, reasonCode, timed by the recorded extension."""
    resource = procedure(rid, MEDS, None, status="not-done", reason=reason)
    if recorded is not None:
        resource["extension"] = [{"url": f"{QICORE}/qicore-recorded", "valueDateTime": recorded}]
    return resource


case(
    "cms68-documented",
    M,
    "medications documented during the visit: numerator",
    [
        patient(),
        visit(),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z"),
    ],
)
case("cms68-not-documented", M, "no documentation: denominator only", [patient(), visit()])
case(
    "cms68-child",
    M,
    "a 10-year-old: the eCQM has no age limit",
    [
        patient(birth="2015-01-01"),
        visit(),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z"),
    ],
)
case(
    "cms68-two-visits-one-documented",
    M,
    "two episodes, one documented: 2 in the denominator, 1 met",
    [
        patient(),
        visit(),
        visit("e2", "2025-06-10T14:00:00Z", "2025-06-10T14:30:00Z"),
        procedure("meds", MEDS, "2025-06-10T14:10:00Z"),
    ],
)
case(
    "cms68-after-visit-end",
    M,
    "documented 10 minutes after the visit ended: not during it",
    [
        patient(),
        visit(),
        procedure("meds", MEDS, "2025-03-04T09:50:00Z"),
    ],
)
case(
    "cms68-period-ending-in-visit",
    M,
    "documentation from before the visit ending during it: numerator",
    [
        patient(),
        visit(),
        procedure("meds", MEDS, "2025-03-04T08:30:00Z", end="2025-03-04T09:10:00Z"),
    ],
)
case(
    "cms68-in-progress-procedure",
    M,
    "documentation in progress, not completed: not met",
    [
        patient(),
        visit(),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z", status="in-progress"),
    ],
)
case(
    "cms68-unfinished-visit",
    M,
    "visit in progress: not an episode",
    [
        patient(),
        visit(status="in-progress"),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z"),
    ],
)
case(
    "cms68-other-visit-type",
    M,
    "an encounter outside the value set: not an episode",
    [
        patient(),
        visit(cpt="99024"),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z"),
    ],
)
case(
    "cms68-visit-2024",
    M,
    "visit on the last day of 2024: outside the period",
    [
        patient(),
        visit(start="2024-12-31T09:00:00Z", end="2024-12-31T09:40:00Z"),
    ],
)
case(
    "cms68-visit-spans-new-year",
    M,
    "visit from 31 Dec 2025 into 1 Jan 2026: not during the period",
    [
        patient(),
        visit(start="2025-12-31T23:30:00Z", end="2026-01-01T00:30:00Z"),
    ],
)
case(
    "cms68-medical-reason",
    M,
    "not done for a medical reason recorded during the visit: exception",
    [
        patient(),
        visit(),
        not_documented("nd", "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms68-medical-reason-recorded-later",
    M,
    "not-done recorded after the visit: no exception",
    [
        patient(),
        visit(),
        not_documented("nd", "2025-03-05T09:15:00Z"),
    ],
)
case(
    "cms68-not-done-no-reason",
    M,
    "not done without a reason in Medical Reason: no exception",
    [
        patient(),
        visit(),
        not_documented("nd", "2025-03-04T09:15:00Z", reason="162864005"),
    ],
)
case(
    "cms68-documented-and-reason",
    M,
    "documented and a not-done with reason: numerator (exception not reached)",
    [
        patient(),
        visit(),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z"),
        not_documented("nd", "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms68-snomed-visit",
    M,
    "a SNOMED-coded encounter type from the value set: an episode",
    [
        patient(),
        visit(cpt="185463005", system=SNOMED),
        procedure("meds", MEDS, "2025-03-04T09:20:00Z"),
    ],
)
