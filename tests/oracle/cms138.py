"""CMS138 tobacco use screening and cessation intervention (three groups): generated cases."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, SNOMED, coded_obs, encounter, patient, procedure
from .cases import case

M = "CMS138"
NON_USER, USER = "105539002", "160603005"


def two_visits(birth: str = "1980-05-01") -> list[dict[str, Any]]:
    return [patient(birth=birth), encounter(), encounter("e2", "2025-08-04T09:00:00Z")]


def screen(answer: str, when: str = "2025-03-04T09:10:00Z", **kw: Any) -> dict[str, Any]:
    kw.setdefault("category", "survey")
    return coded_obs(f"s{when[5:7]}", "72166-2", when, value_code=answer, value_system=SNOMED, **kw)


case(
    "cms138-non-user",
    M,
    "screened non-user: group 1 numerator, not in group 2",
    [*two_visits(), screen(NON_USER)],
)
case(
    "cms138-user-no-help",
    M,
    "screened user, no cessation: group 2 denominator, not met",
    [*two_visits(), screen(USER)],
)
case(
    "cms138-user-counseled",
    M,
    "screened user with cessation counseling: group 2 and 3 numerators",
    [*two_visits(), screen(USER), procedure("c", "99406", "2025-03-04T09:20:00Z", system=CPT)],
)
case(
    "cms138-counseled-july-before",
    M,
    "counseling on 1 July of the year before: within 6 months before the period",
    [*two_visits(), screen(USER), procedure("c", "99406", "2024-07-01T09:20:00Z", system=CPT)],
)
case(
    "cms138-latest-decides",
    M,
    "user in March, non-user in September: the most recent screening decides",
    [*two_visits(), screen(USER), screen(NON_USER, "2025-09-04T09:10:00Z")],
)
case("cms138-not-screened", M, "two visits, no screening: denominator only", two_visits())
case(
    "cms138-one-visit",
    M,
    "a single office visit: not in the initial population",
    [patient(birth="1980-05-01"), encounter(), screen(NON_USER)],
)
case(
    "cms138-preventive-visit",
    M,
    "one preventive visit (99396): initial population",
    [patient(birth="1980-05-01"), encounter(cpt="99396"), screen(NON_USER)],
)
case(
    "cms138-age-11",
    M,
    "11 at the start of the period: not in the initial population",
    [*two_visits("2013-01-02"), screen(NON_USER)],
)
case(
    "cms138-no-survey-category",
    M,
    "screening without the survey category: not an assessment",
    [*two_visits(), screen(NON_USER, category=None)],
)
