"""CMS154 appropriate treatment for upper respiratory infection: generated cases (see ``cases``); each
qualifying visit with a URI is an episode, met when no antibiotic is ordered within 3 days of its start."""

from __future__ import annotations

from typing import Any

from ..conftest import patient
from .cases import case
from .respiratory import (
    COMORBID,
    COMPETING,
    PHARYNGITIS,
    TONSILLITIS,
    URI,
    antibiotic,
    diagnosis,
    hospice_visit,
    visit,
)

M = "CMS154"
CHILD = "2019-05-01"  # 5 at the start of 2025


def episode(birth: str = CHILD, **kw: Any) -> list[dict[str, Any]]:
    """A visit on 4 March 2025 for a URI starting at it."""
    return [patient(birth=birth), visit(**kw), diagnosis("uri", URI)]


case("cms154-no-antibiotic", M, "URI visit without an antibiotic: numerator", episode())
case(
    "cms154-antibiotic",
    M,
    "URI visit with an antibiotic ordered at it: denominator only",
    [*episode(), antibiotic()],
)
case(
    "cms154-abx-3d-to-the-minute",
    M,
    "antibiotic ordered exactly 3 days after the visit starts: not in the numerator",
    [*episode(), antibiotic(authored="2025-03-07T09:00:00Z")],
)
case(
    "cms154-abx-3d-and-a-minute",
    M,
    "antibiotic ordered 3 days and 1 minute after the visit starts (to the instant): numerator",
    [*episode(), antibiotic(authored="2025-03-07T09:01:00Z")],
)
case(
    "cms154-abx-hour-before",
    M,
    "antibiotic ordered an hour before the visit starts: numerator",
    [*episode(), antibiotic(authored="2025-03-04T08:00:00Z")],
)
case(
    "cms154-abx-plan",
    M,
    "antibiotic with intent plan at the visit: numerator",
    [*episode(), antibiotic(intent="plan")],
)
case(
    "cms154-uri-ongoing",
    M,
    "URI active since the week before the visit: an episode (overlaps before)",
    [patient(birth=CHILD), visit(), diagnosis("uri", URI, "2025-02-25T10:00:00Z")],
)
case(
    "cms154-uri-abated",
    M,
    "URI that abated 2 days before the visit: no episode",
    [
        patient(birth=CHILD),
        visit(),
        diagnosis("uri", URI, "2025-02-25T10:00:00Z", abatement="2025-03-02T10:00:00Z"),
    ],
)
case(
    "cms154-uri-resolved-no-date",
    M,
    "URI resolved (no abatement date) starting before the visit: no episode (its end is unknown)",
    [patient(birth=CHILD), visit(), diagnosis("uri", URI, "2025-02-25T10:00:00Z", status="resolved")],
)
case(
    "cms154-uri-after",
    M,
    "URI starting the day after the visit: no episode",
    [patient(birth=CHILD), visit(), diagnosis("uri", URI, "2025-03-05T10:00:00Z")],
)
case(
    "cms154-age-3-months",
    M,
    "3 months old at the start of the period: an episode",
    episode(birth="2024-10-01"),
)
case(
    "cms154-age-2-months",
    M,
    "2 months old at the start of the period: no episode",
    episode(birth="2024-10-02"),
)
case("cms154-adult", M, "34 at the start of the period: stratum 18-64", episode(birth="1990-05-01"))
case(
    "cms154-senior",
    M,
    "65 at the start of the period with an antibiotic: stratum 65+",
    [*episode(birth="1960-01-01"), antibiotic()],
)
case("cms154-hospice", M, "hospice encounter in the period: excluded", [*episode(), hospice_visit()])
case(
    "cms154-comorbid",
    M,
    "comorbid condition starting 6 months before the visit: excluded",
    [*episode(), diagnosis("co", COMORBID, "2024-09-04T08:00:00Z")],
)
case(
    "cms154-prior-abx-completed",
    M,
    "completed antibiotic order covering days before the visit: excluded (no status filter here)",
    [*episode(), antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10, status="completed")],
)
case(
    "cms154-prior-abx-plan",
    M,
    "antibiotic plan covering days before the visit: excluded (no intent filter here)",
    [*episode(), antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10, intent="plan")],
)
case(
    "cms154-prior-abx-long-ago",
    M,
    "antibiotic order ending more than 30 days before the visit: not excluded",
    [*episode(), antibiotic("prior", "2025-01-10T09:00:00Z", supply_days=10)],
)
case(
    "cms154-competing",
    M,
    "competing diagnosis 2 days after the visit: excluded",
    [*episode(), diagnosis("cd", COMPETING, "2025-03-06T10:00:00Z")],
)
case(
    "cms154-pharyngitis",
    M,
    "acute pharyngitis at the visit: excluded (a competing diagnosis here)",
    [*episode(), diagnosis("ph", PHARYNGITIS)],
)
case(
    "cms154-tonsillitis-3d",
    M,
    "acute tonsillitis 3 days after the visit: excluded",
    [*episode(), diagnosis("to", TONSILLITIS, "2025-03-07T22:00:00Z")],
)
case(
    "cms154-tonsillitis-4d",
    M,
    "acute tonsillitis 4 days after the visit: not excluded",
    [*episode(), diagnosis("to", TONSILLITIS, "2025-03-08T08:00:00Z")],
)
case(
    "cms154-unlisted-preventive",
    M,
    "visit typed CPT 99429 (unlisted preventive service): an episode",
    episode(cpt="99429"),
)
case("cms154-in-progress", M, "visit in progress (performed): an episode", episode(status="in-progress"))
case("cms154-cancelled", M, "cancelled visit: no episode", episode(status="cancelled"))
case(
    "cms154-visit-dec-29",
    M,
    "visit ending 29 December: no episode",
    [
        patient(birth=CHILD),
        visit(start="2025-12-29T09:00:00Z", end="2025-12-29T09:30:00Z"),
        diagnosis("uri", URI, "2025-12-29T09:05:00Z"),
    ],
)
case(
    "cms154-two-visits",
    M,
    "two URI visits, an antibiotic at the second: two episodes, one in the numerator",
    [
        *episode(),
        visit("e2", "2025-06-10T09:00:00Z", "2025-06-10T09:30:00Z"),
        diagnosis("uri2", URI, "2025-06-10T09:05:00Z"),
        antibiotic("abx2", "2025-06-10T09:25:00Z"),
    ],
)
case(
    "cms154-abx-date-only-visit-day",
    M,
    "antibiotic authoredOn a date only, the visit's day: CQL precision decides the 'on or after start'",
    [*episode(), antibiotic(authored="2025-03-04")],
)
case(
    "cms154-abx-date-only-next-day",
    M,
    "antibiotic authoredOn a date only, the day after the visit: not in the numerator",
    [*episode(), antibiotic(authored="2025-03-05")],
)
case(
    "cms154-uri-date-only-before",
    M,
    "URI with a date-only onset a week before the visit, active: an episode (overlaps before)",
    [patient(birth=CHILD), visit(), diagnosis("uri", URI, "2025-02-25")],
)
case(
    "cms154-uri-date-only-visit-day",
    M,
    "URI with a date-only onset on the visit's day: an episode (starts during day of the visit)",
    [patient(birth=CHILD), visit(), diagnosis("uri", URI, "2025-03-04")],
)
case(
    "cms154-uri-abated-hour-before",
    M,
    "URI abated an hour before the visit started, that day: no episode (overlaps to the instant)",
    [
        patient(birth=CHILD),
        visit(),
        diagnosis("uri", URI, "2025-02-25T10:00:00Z", abatement="2025-03-04T08:00:00Z"),
    ],
)
case(
    "cms154-uri-abated-during-visit",
    M,
    "URI abated during the visit: an episode (overlaps before)",
    [
        patient(birth=CHILD),
        visit(),
        diagnosis("uri", URI, "2025-02-25T10:00:00Z", abatement="2025-03-04T09:10:00Z"),
    ],
)
