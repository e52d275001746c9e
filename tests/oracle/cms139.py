"""CMS139 falls screening for future fall risk: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import LOINC, coded_obs, encounter, patient
from .cases import case

M = "CMS139"


def older(birth: str = "1950-05-01", cpt: str = "99213") -> list[dict[str, Any]]:
    return [patient(birth=birth), encounter(cpt=cpt)]


def screening(when: str = "2025-03-04T09:10:00Z", **kw: Any) -> dict[str, Any]:
    return coded_obs("f", "73830-2", when, value_code="LA6270-8", value_system=LOINC, **kw)


case("cms139-screened", M, "falls screening (survey) in the period: numerator", [*older(), screening()])
case("cms139-not-screened", M, "no screening: denominator only", older())
case(
    "cms139-no-category",
    M,
    "screening without the survey category: not an assessment",
    [*older(), screening(category=None)],
)
case(
    "cms139-last-year",
    M,
    "screening in the previous year only: not met",
    [*older(), screening("2024-12-31T09:10:00Z")],
)
case("cms139-age-65", M, "65 on the first day of the period: initial population", older("1960-01-01"))
case("cms139-age-64", M, "64 at the start of the period: not in the initial population", older("1960-01-02"))
case("cms139-nursing-facility", M, "nursing facility visit (99307) qualifies", older(cpt="99307"))
