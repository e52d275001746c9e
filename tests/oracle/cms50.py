"""CMS50 closing the referral loop, receipt of specialist report: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, LOINC, encounter, patient, request
from .cases import case

M = "CMS50"
REFERRAL = "103696004"  # SNOMED referral to specialist, in Referral 2.16.840.1.113883.3.464.1003.101.12.1046
CONSULT_NOTE = "11488-4"  # LOINC consult note, in Consultant Report 2.16.840.1.113883.3.464.1003.121.12.1006
REFERRED_AT = "2025-03-04T09:30:00Z"


def referral(rid: str = "ref", authored: str = REFERRED_AT, **kw: Any) -> dict[str, Any]:
    return request("ServiceRequest", rid, REFERRAL, authored, **kw)


def report(
    tid: str = "task",
    ends: str = "2025-04-02T15:00:00Z",
    *,
    based_on: str | None = "ref",
    starts: str | None = None,
    status: str = "completed",
    code: str = CONSULT_NOTE,
    pid: str = "p1",
) -> dict[str, Any]:
    """A QI-Core Task: the consultant report for the referral ``based_on``, its execution ending ``ends``."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": tid,
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "for": {"reference": f"Patient/{pid}"},
        "executionPeriod": {"start": starts or ends, "end": ends},
    }
    if based_on is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{based_on}"}]
    return resource


def referred(*extra: dict[str, Any], visit: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    """An office visit on 4 March 2025 and a referral to a specialist during it."""
    return [
        patient(birth="1970-05-01"),
        visit or encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:40:00Z"),
        referral(**kw),
        *extra,
    ]


case("cms50-report", M, "consultant report in April for the March referral: numerator", referred(report()))
case("cms50-no-report", M, "referral without a report: denominator", referred())
case(
    "cms50-report-other-referral",
    M,
    "the only report is based on another (later) referral: denominator",
    [*referred(), referral("ref2", "2025-05-01T10:00:00Z"), report(based_on="ref2")],
)
case(
    "cms50-report-not-linked",
    M,
    "a consultant report Task with no basedOn: denominator",
    referred(report(based_on=None)),
)
case(
    "cms50-report-first-of-two",
    M,
    "two referrals, the report answers the first (March): numerator",
    [*referred(), referral("ref2", "2025-05-01T10:00:00Z"), report()],
)
case(
    "cms50-report-in-progress",
    M,
    "the report Task is in progress: denominator",
    referred(report(status="in-progress")),
)
case(
    "cms50-report-other-code",
    M,
    "a completed Task based on the referral, not a consultant report (LOINC 18842-5 discharge summary):"
    " denominator",
    referred(report(code="18842-5")),
)
case(
    "cms50-report-before-referral",
    M,
    "the report ends at 09:00 on the referral's day, before it was authored at 09:30: denominator",
    referred(report(ends="2025-03-04T09:00:00Z")),
)
case(
    "cms50-report-same-day-after",
    M,
    "the report ends at 16:00 on the referral's day, after it was authored: numerator",
    referred(report(ends="2025-03-04T16:00:00Z")),
)
case(
    "cms50-report-next-year",
    M,
    "the report ends on 2 January 2026, after the period: denominator",
    referred(report(ends="2026-01-02T10:00:00Z", starts="2025-12-20T10:00:00Z")),
)
case(
    "cms50-report-december-31",
    M,
    "the report ends on 31 December 2025: numerator",
    referred(report(ends="2025-12-31T15:00:00Z", starts="2025-12-20T10:00:00Z")),
)
case(
    "cms50-referral-october-31",
    M,
    "referral on 31 October, report in November: numerator",
    [
        patient(birth="1970-05-01"),
        encounter("e1", "2025-10-31T09:00:00Z"),
        referral(authored="2025-10-31T09:30:00Z"),
        report(ends="2025-11-20T10:00:00Z"),
    ],
)
case(
    "cms50-referral-november-1",
    M,
    "the only referral is on 1 November (after the first 10 months): not in the population",
    [
        patient(birth="1970-05-01"),
        encounter("e1", "2025-11-01T09:00:00Z"),
        referral(authored="2025-11-01T09:30:00Z"),
        report(ends="2025-11-20T10:00:00Z"),
    ],
)
case(
    "cms50-referral-last-year",
    M,
    "the only referral is from December 2024: not in the population",
    referred(report(), authored="2024-12-20T09:30:00Z"),
)
case(
    "cms50-referral-last-year-and-march",
    M,
    "a December 2024 referral and the March one answered: the first in the period is March's, numerator",
    [*referred(report()), referral("old", "2024-12-20T09:30:00Z"), report("task-old", based_on="old")],
)
case(
    "cms50-referral-draft",
    M,
    "the referral is a draft: not in the population",
    referred(report(), status="draft"),
)
case(
    "cms50-referral-plan",
    M,
    "the referral's intent is plan: not in the population",
    referred(report(), intent="plan"),
)
case(
    "cms50-referral-completed",
    M,
    "the referral is completed, with its report: numerator",
    referred(report(), status="completed"),
)
case(
    "cms50-visit-cancelled",
    M,
    "the only visit is cancelled: not in the population",
    referred(report(), visit=encounter("e1", "2025-03-04T09:00:00Z", status="cancelled")),
)
case(
    "cms50-visit-crisis-psychotherapy",
    M,
    "the visit is crisis psychotherapy (CPT 90839 on Encounter.type): numerator",
    referred(report(), visit=encounter("e1", "2025-03-04T09:00:00Z", cpt="90839", system=CPT)),
)
case(
    "cms50-visit-other",
    M,
    "the only visit is an ED visit (CPT 99283, in none of the sets): not in the population",
    referred(report(), visit=encounter("e1", "2025-03-04T09:00:00Z", cpt="99283")),
)
case(
    "cms50-visit-last-year",
    M,
    "the only visit was in December 2024: not in the population",
    referred(report(), visit=encounter("e1", "2024-12-04T09:00:00Z")),
)
case(
    "cms50-referral-date-only-report-same-day",
    M,
    "the referral's authoredOn is a date (4 March), the report ends at 16:00 that day: 'after' is uncertain"
    " to the instant (explained: fhir-cat2 counts it)",
    referred(report(ends="2025-03-04T16:00:00Z"), authored="2025-03-04"),
)
case(
    "cms50-referral-date-only-report-next-day",
    M,
    "the referral's authoredOn is a date (4 March), the report ends on 5 March: numerator",
    referred(report(ends="2025-03-05T10:00:00Z"), authored="2025-03-04"),
)
case(
    "cms50-report-date-only-end",
    M,
    "the report's executionPeriod ends on a date (2 April) without a time: numerator",
    referred(report(ends="2025-04-02")),
)
case(
    "cms50-referral-do-not-perform",
    M,
    "the only referral is marked doNotPerform (QI-Core ServiceNotRequested): not in the population",
    referred(report(), do_not_perform=True),
)
case(
    "cms50-visit-psych-evaluation",
    M,
    "the visit is a psychiatric diagnostic evaluation (CPT 90791): numerator",
    referred(report(), visit=encounter("e1", "2025-03-04T09:00:00Z", cpt="90791")),
)
case(
    "cms50-report-focus-only",
    M,
    "the consultant report Task names the referral in focus, not basedOn: denominator",
    referred({**report(based_on=None), "focus": {"reference": "ServiceRequest/ref"}}),
)
