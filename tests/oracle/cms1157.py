"""CMS1157 HIV annual retention in care: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import encounter, patient
from .cases import case
from .hiv import hiv, viral_load

M = "CMS1157"
FIRST = "2025-02-10T09:00:00Z"
DAY_90 = "2025-05-11T09:00:00Z"  # 10 February + 90 days
DAY_89 = "2025-05-10T09:00:00Z"


def in_care(onset: str = "2019-06-01", first: str = FIRST, **kw: Any) -> list[dict[str, Any]]:
    """A patient with active HIV since 2019 and an office visit on 10 February 2025 (09:00-09:30)."""
    return [
        patient(birth="1985-09-01", gender="female"),
        hiv(onset, **kw),
        encounter("e1", first, end=first.replace("09:00", "09:30")),
    ]


def visit(eid: str, start: str, **kw: Any) -> dict[str, Any]:
    return encounter(eid, start, **kw)


case(
    "cms1157-two-visits-90-days",
    M,
    "a second visit 90 days after the first: numerator",
    [*in_care(), visit("e2", DAY_90)],
)
case(
    "cms1157-two-visits-89-days",
    M,
    "a second visit 89 days after the first: denominator",
    [*in_care(), visit("e2", DAY_89)],
)
case("cms1157-one-visit", M, "one visit, no viral load: denominator", in_care())
case(
    "cms1157-viral-load-90-days-after",
    M,
    "a viral load test 90 days after the visit: numerator",
    [*in_care(), viral_load(when=DAY_90)],
)
case(
    "cms1157-viral-load-89-days-after",
    M,
    "a viral load test 89 days after the visit: denominator",
    [*in_care(), viral_load(when=DAY_89)],
)
case(
    "cms1157-viral-load-before-visit",
    M,
    "a viral load test on 5 January, the visit on 5 April (90 days later): numerator",
    [*in_care(first="2025-04-05T09:00:00Z"), viral_load(when="2025-01-05T10:00:00Z")],
)
case(
    "cms1157-viral-load-last-year",
    M,
    "the viral load test was in December 2024, the visit in April: not in the period, denominator",
    [*in_care(first="2025-04-05T09:00:00Z"), viral_load(when="2024-12-20T10:00:00Z")],
)
case(
    "cms1157-multi-day-visit",
    M,
    "a visit from 10 to 12 February and one on 12 May (89 days after its last day): denominator",
    [
        patient(birth="1985-09-01", gender="female"),
        hiv(),
        visit("e1", FIRST, end="2025-02-12T10:00:00Z"),
        visit("e2", "2025-05-12T09:00:00Z"),
    ],
)
case(
    "cms1157-hiv-resolved",
    M,
    "HIV diagnosis resolved (inactive): not in the population",
    [*in_care(status="resolved", abatement="2022-01-01"), visit("e2", DAY_90)],
)
case(
    "cms1157-hiv-after-first-visit",
    M,
    "HIV diagnosed on 1 March, after the first visit: only the later visit is with HIV, denominator",
    [*in_care(onset="2025-03-01"), visit("e2", DAY_90)],
)
case(
    "cms1157-onset-day-240",
    M,
    "HIV onset 29 August (period start + 240 days), visits with HIV on 29 August and 1 December: numerator",
    [
        *in_care(onset="2025-08-29"),
        visit("e2", "2025-08-29T09:00:00Z"),
        visit("e3", "2025-12-01T09:00:00Z"),
    ],
)
case(
    "cms1157-onset-day-241",
    M,
    "HIV onset 30 August: not in the population",
    [
        *in_care(onset="2025-08-30"),
        visit("e2", "2025-08-30T09:00:00Z"),
        visit("e3", "2025-12-01T09:00:00Z"),
    ],
)
case(
    "cms1157-first-visit-day-241",
    M,
    "the first visit is on 30 August (after the first 240 days): not in the population",
    [*in_care(first="2025-08-30T09:00:00Z"), visit("e2", "2025-12-01T09:00:00Z")],
)
case(
    "cms1157-cancelled-visits",
    M,
    "both visits were cancelled: the CQL reads no encounter status, numerator",
    [
        patient(birth="1985-09-01", gender="female"),
        hiv(),
        visit("e1", FIRST, status="cancelled"),
        visit("e2", DAY_90, status="cancelled"),
    ],
)
case(
    "cms1157-telephone-then-visit",
    M,
    "a telephone visit (CPT 99442) in February and an office visit in May, 90 days apart: numerator",
    [
        patient(birth="1985-09-01", gender="female"),
        hiv(),
        visit("e1", FIRST, cpt="99442"),
        visit("e2", DAY_90),
    ],
)
