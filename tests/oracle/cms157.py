"""CMS157 oncology pain intensity quantified: generated cases (see ``cases``); group 1 office visits during
chemotherapy, group 2 radiation treatment management, each encounter an episode."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, coded_obs, condition, encounter, patient, procedure
from .cases import case

M = "CMS157"
CANCER = "C50.911"  # in Cancer 2.16.840.1.113883.3.526.3.1010
CHEMO = "96413"  # in Chemotherapy Administration 2.16.840.1.113883.3.526.3.1027
PAIN = "72514-3"  # in Standardized Pain Assessment Tool 2.16.840.1.113883.3.526.3.1028
VISIT = "2025-03-04T09:00:00Z"
VISIT_END = "2025-03-04T09:40:00Z"


def cancer(**kw: Any) -> dict[str, Any]:
    kw.setdefault("onset", "2024-11-01")
    return condition("ca", CANCER, **kw)


def chemo(rid: str, when: str, **kw: Any) -> dict[str, Any]:
    return procedure(rid, CHEMO, when, system=CPT, **kw)


def pain(oid: str = "pain", when: str = "2025-03-04T09:20:00Z", value: Any = 4, **kw: Any) -> dict[str, Any]:
    return coded_obs(oid, PAIN, when, value=value, category=None, **kw)


def office(eid: str = "e1", start: str = VISIT, end: str = VISIT_END, **kw: Any) -> dict[str, Any]:
    return encounter(eid, start, end=end, **kw)


def radiation(
    eid: str = "rt", cpt: str = "77431", start: str = VISIT, end: str = VISIT_END
) -> dict[str, Any]:
    return encounter(eid, start, end=end, cpt=cpt)


ON_CHEMO = [
    patient(birth="1965-02-01"),
    cancer(),
    chemo("c1", "2025-02-20T10:00:00Z"),
    chemo("c2", "2025-03-20T10:00:00Z"),
]

case(
    "cms157-chemo-pain-assessed",
    M,
    "office visit between two chemo sessions, pain scored: group 1 met",
    [
        *ON_CHEMO,
        office(),
        pain(),
    ],
)
case(
    "cms157-chemo-not-assessed",
    M,
    "office visit during chemo, no pain score: group 1 denominator only",
    [
        *ON_CHEMO,
        office(),
    ],
)
case(
    "cms157-chemo-before-only",
    M,
    "chemo only before the visit: not ongoing, no episode in group 1",
    [
        patient(birth="1965-02-01"),
        cancer(),
        chemo("c1", "2025-02-20T10:00:00Z"),
        office(),
        pain(),
    ],
)
case(
    "cms157-chemo-31-days-before",
    M,
    "chemo 31 days before the visit's day: too early",
    [
        patient(birth="1965-02-01"),
        cancer(),
        chemo("c1", "2025-02-01T10:00:00Z"),
        chemo("c2", "2025-03-20T10:00:00Z"),
        office(),
    ],
)
case(
    "cms157-chemo-30-days-each-side",
    M,
    "chemo exactly 30 days before and after the visit's day",
    [
        patient(birth="1965-02-01"),
        cancer(),
        chemo("c1", "2025-02-02T10:00:00Z"),
        chemo("c2", "2025-04-03T10:00:00Z"),
        office(),
        pain(),
    ],
)
case(
    "cms157-chemo-same-day-only",
    M,
    "the only chemo is on the visit's day: before and after are the same day",
    [
        patient(birth="1965-02-01"),
        cancer(),
        chemo("c1", "2025-03-04T11:00:00Z"),
        office(),
        pain(),
    ],
)
case(
    "cms157-chemo-visit-day-and-after",
    M,
    "chemo on the visit's day and 2 weeks later: ongoing",
    [
        patient(birth="1965-02-01"),
        cancer(),
        chemo("c1", "2025-03-04T11:00:00Z"),
        chemo("c2", "2025-03-18T10:00:00Z"),
        office(),
    ],
)
case(
    "cms157-cancer-resolved",
    M,
    "cancer abated before the visit: not active, no episode",
    [
        patient(birth="1965-02-01"),
        cancer(status="resolved", abatement="2025-01-15"),
        chemo("c1", "2025-02-20T10:00:00Z"),
        chemo("c2", "2025-03-20T10:00:00Z"),
        office(),
    ],
)
case(
    "cms157-pain-no-value",
    M,
    "pain assessment without a value: not a result",
    [
        *ON_CHEMO,
        office(),
        pain(value=None),
    ],
)
case(
    "cms157-pain-preliminary",
    M,
    "pain assessment preliminary: not final",
    [
        *ON_CHEMO,
        office(),
        pain(status="preliminary"),
    ],
)
case(
    "cms157-pain-after-visit",
    M,
    "pain scored an hour after the visit ended: not during it",
    [
        *ON_CHEMO,
        office(),
        pain(when="2025-03-04T10:40:00Z"),
    ],
)
case(
    "cms157-radiation-assessed",
    M,
    "radiation management (not 77427), pain scored that day: group 2 met",
    [
        patient(birth="1958-07-01"),
        cancer(),
        radiation(),
        pain(when="2025-03-04T12:00:00Z"),
    ],
)
case(
    "cms157-radiation-not-assessed",
    M,
    "radiation management, no pain score: group 2 denominator only",
    [
        patient(birth="1958-07-01"),
        cancer(),
        radiation(),
    ],
)
case(
    "cms157-radiation-no-cancer",
    M,
    "radiation management without a cancer diagnosis: no episode",
    [
        patient(birth="1958-07-01"),
        radiation(),
        pain(),
    ],
)
case(
    "cms157-radiation-77427-6-days",
    M,
    "5 treatments (77427), pain scored 6 days before its start: met",
    [
        patient(birth="1958-07-01"),
        cancer(),
        radiation(cpt="77427"),
        pain(when="2025-02-26T09:00:00Z"),
    ],
)
case(
    "cms157-radiation-77427-7-days",
    M,
    "5 treatments (77427), pain scored 7 days before its start: not met",
    [
        patient(birth="1958-07-01"),
        cancer(),
        radiation(cpt="77427"),
        pain(when="2025-02-25T09:00:00Z"),
    ],
)
case(
    "cms157-radiation-77427-after",
    M,
    "5 treatments (77427), pain scored the day after: not met",
    [
        patient(birth="1958-07-01"),
        cancer(),
        radiation(cpt="77427"),
        pain(when="2025-03-05T09:00:00Z"),
    ],
)
case(
    "cms157-both-groups",
    M,
    "radiation and an office visit during chemo, one pain score: both groups",
    [
        *ON_CHEMO,
        office(),
        radiation("rt", start="2025-03-10T09:00:00Z", end="2025-03-10T09:30:00Z"),
        pain(),
    ],
)
