"""CMS142 diabetic retinopathy findings communicated: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient
from .cases import case

M = "CMS142"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SEVERITY = "312903003"  # mild non-proliferative retinopathy (Level of Severity of Retinopathy Findings)
EDEMA_ABSENT = "428341000124108"
EDEMA_PRESENT = "193350004"


def retinopathy(verification: str | None = None) -> dict[str, Any]:
    made = condition("dr", "E11.319", system=ICD10, onset="2020-01-01")
    if verification is not None:
        made["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    return made


def visit(**kw: Any) -> dict[str, Any]:
    """An eye visit on 4 March, 09:00-09:30."""
    return encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z", **kw)


def macular_exam(**kw: Any) -> dict[str, Any]:
    kw.setdefault("value_code", "17621005")
    return coded_obs("mac", "32451-7", "2025-03-04T09:10:00Z", category="exam", **kw)


def examined(
    birth: str = "1960-05-01", *, dr: dict[str, Any] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """Retinopathy, an eye visit, and a macular exam at it: in the denominator."""
    return [patient(birth=birth), dr or retinopathy(), visit(**kw), macular_exam()]


def sent(
    cid: str,
    code: str,
    when: str = "2025-03-05T10:00:00Z",
    *,
    status: str = "completed",
    reason: str | None = None,
) -> dict[str, Any]:
    """A Communication about the findings (coded by reasonCode), sent at ``when``."""
    made: dict[str, Any] = {
        "resourceType": "Communication",
        "id": cid,
        "status": status,
        "reasonCode": [{"coding": [{"system": SNOMED, "code": code}]}],
        "subject": {"reference": "Patient/p1"},
        "sent": when,
    }
    if reason is not None:
        made["statusReason"] = {"coding": [{"system": SNOMED, "code": reason}]}
    return made


def both(when: str = "2025-03-05T10:00:00Z", edema: str = EDEMA_ABSENT, **kw: Any) -> list[dict[str, Any]]:
    return [sent("sev", SEVERITY, when, **kw), sent("ede", edema, when, **kw)]


case("cms142-communicated", M, "severity and edema absence communicated: numerator", [*examined(), *both()])
case(
    "cms142-edema-present",
    M,
    "severity and edema presence communicated: numerator",
    [*examined(), *both(edema=EDEMA_PRESENT)],
)
case(
    "cms142-severity-only",
    M,
    "only the severity communicated: not met",
    [*examined(), sent("sev", SEVERITY)],
)
case(
    "cms142-edema-only",
    M,
    "only the edema absence communicated: not met",
    [*examined(), sent("ede", EDEMA_ABSENT)],
)
case(
    "cms142-same-day-after-start",
    M,
    "communications sent at 09:45 on the visit day, after it began: numerator",
    [*examined(), *both("2025-03-04T09:45:00Z")],
)
case(
    "cms142-sent-before-visit",
    M,
    "communications sent the day before the visit: not met",
    [*examined(), *both("2025-03-03T10:00:00Z")],
)
case(
    "cms142-sent-next-year",
    M,
    "communications sent after the period: not met",
    [*examined(), *both("2026-01-02T10:00:00Z")],
)
case(
    "cms142-in-progress",
    M,
    "communications in progress, not completed: not met",
    [*examined(), *both(status="in-progress")],
)
case(
    "cms142-no-macular-exam",
    M,
    "no macular exam: initial population only, not in the denominator",
    [patient(birth="1960-05-01"), retinopathy(), visit(), *both()],
)
case(
    "cms142-macular-exam-no-value",
    M,
    "macular exam without a result: not in the denominator",
    [patient(birth="1960-05-01"), retinopathy(), visit(), macular_exam(value_code=None), *both()],
)
case(
    "cms142-medical-reason",
    M,
    "severity communication not done for a medical reason during the visit: denominator exception",
    [*examined(), sent("nd", SEVERITY, "2025-03-04T09:20:00Z", status="not-done", reason="183932001")],
)
case(
    "cms142-reason-next-day",
    M,
    "communication not done for a medical reason, sent the next day: no exception",
    [*examined(), sent("nd", SEVERITY, "2025-03-05T09:20:00Z", status="not-done", reason="183932001")],
)
case(
    "cms142-virtual",
    M,
    "the only visit is virtual: not in the initial population",
    [*examined(klass="VR"), *both()],
)
case(
    "cms142-refuted",
    M,
    "retinopathy refuted: not in the initial population",
    [*examined(dr=retinopathy("refuted")), *both()],
)
case(
    "cms142-age-17", M, "17 at the start of the period: not in the initial population", examined("2007-01-02")
)
case(
    "cms142-same-day-before-start",
    M,
    "communications sent at 08:45 on the visit day, before it began: not met",
    [*examined(), *both("2025-03-04T08:45:00Z")],
)
case(
    "cms142-patient-reason",
    M,
    "edema communication not done for a patient reason during the visit: denominator exception",
    [*examined(), sent("nd", EDEMA_ABSENT, "2025-03-04T09:20:00Z", status="not-done", reason="182890002")],
)
