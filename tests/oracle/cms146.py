"""CMS146 appropriate testing for pharyngitis: generated cases (see ``cases``); each qualifying visit with an
antibiotic and pharyngitis is an episode."""

from __future__ import annotations

from typing import Any

from ..conftest import patient
from .cases import case
from .respiratory import (
    COMORBID,
    COMPETING,
    PHARYNGITIS,
    TONSILLITIS,
    antibiotic,
    diagnosis,
    hospice_visit,
    strep_test,
    visit,
)

M = "CMS146"
ADULT = "1990-05-01"  # 34 at the start of 2025


def episode(birth: str = ADULT, code: str = PHARYNGITIS) -> list[dict[str, Any]]:
    """A visit on 4 March 2025 for pharyngitis with an antibiotic ordered at it."""
    return [patient(birth=birth), visit(), diagnosis("ph", code), antibiotic()]


case(
    "cms146-tested", M, "pharyngitis visit, antibiotic and strep test: numerator", [*episode(), strep_test()]
)
case("cms146-not-tested", M, "pharyngitis visit with an antibiotic, no strep test: denominator", episode())
case(
    "cms146-test-3d-before",
    M,
    "strep test 3 days before the visit ends: numerator",
    [*episode(), strep_test("2025-03-01T08:00:00Z")],
)
case(
    "cms146-test-4d-before",
    M,
    "strep test 4 days before the visit ends: not in the numerator",
    [*episode(), strep_test("2025-02-28T20:00:00Z")],
)
case(
    "cms146-test-3d-after",
    M,
    "strep test 3 days after the visit ends: numerator",
    [*episode(), strep_test("2025-03-07T20:00:00Z")],
)
case(
    "cms146-test-4d-after",
    M,
    "strep test 4 days after the visit ends: not in the numerator",
    [*episode(), strep_test("2025-03-08T08:00:00Z")],
)
case(
    "cms146-test-no-value",
    M,
    "strep test without a result: not in the numerator",
    [*episode(), strep_test(value_code=None)],
)
case(
    "cms146-test-preliminary",
    M,
    "strep test with a preliminary status: not in the numerator",
    [*episode(), strep_test(status="preliminary")],
)
case(
    "cms146-test-not-lab",
    M,
    "strep test not categorised laboratory: not in the numerator",
    [*episode(), strep_test(category="survey")],
)
case(
    "cms146-abx-3d-after",
    M,
    "antibiotic ordered 3 days after the visit: an episode",
    [
        patient(birth=ADULT),
        visit(),
        diagnosis("ph", PHARYNGITIS),
        antibiotic(authored="2025-03-07T22:00:00Z"),
    ],
)
case(
    "cms146-abx-4d-after",
    M,
    "antibiotic ordered 4 days after the visit: no episode",
    [
        patient(birth=ADULT),
        visit(),
        diagnosis("ph", PHARYNGITIS),
        antibiotic(authored="2025-03-08T08:00:00Z"),
    ],
)
case(
    "cms146-abx-day-before",
    M,
    "antibiotic ordered the day before the visit: no episode",
    [
        patient(birth=ADULT),
        visit(),
        diagnosis("ph", PHARYNGITIS),
        antibiotic(authored="2025-03-03T10:00:00Z"),
    ],
)
case(
    "cms146-abx-plan",
    M,
    "antibiotic with intent plan: no episode",
    [patient(birth=ADULT), visit(), diagnosis("ph", PHARYNGITIS), antibiotic(intent="plan")],
)
case(
    "cms146-pharyngitis-before",
    M,
    "pharyngitis starting the day before the visit: no episode",
    [patient(birth=ADULT), visit(), diagnosis("ph", PHARYNGITIS, "2025-03-03T10:00:00Z"), antibiotic()],
)
case(
    "cms146-tonsillitis",
    M,
    "acute tonsillitis at the visit: an episode",
    [*episode(code=TONSILLITIS), strep_test()],
)
case(
    "cms146-age-2",
    M,
    "2 at the start of the period: no episode",
    [*episode(birth="2022-01-02"), strep_test()],
)
case(
    "cms146-age-3",
    M,
    "3 at the start of the period: stratum 3-17",
    [*episode(birth="2022-01-01"), strep_test()],
)
case(
    "cms146-age-65",
    M,
    "65 at the start of the period: stratum 65+",
    [*episode(birth="1960-01-01"), strep_test()],
)
case(
    "cms146-hospice",
    M,
    "hospice encounter in the period: excluded",
    [*episode(), hospice_visit(), strep_test()],
)
case(
    "cms146-comorbid-1y",
    M,
    "comorbid condition starting 1 year before the visit: excluded",
    [*episode(), diagnosis("co", COMORBID, "2024-03-04T08:00:00Z")],
)
case(
    "cms146-comorbid-older",
    M,
    "comorbid condition starting 1 year and 1 day before the visit: not excluded",
    [*episode(), diagnosis("co", COMORBID, "2024-03-03T08:00:00Z")],
)
case(
    "cms146-prior-abx-active",
    M,
    "active antibiotic order covering days before the visit: excluded",
    [*episode(), antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10)],
)
case(
    "cms146-prior-abx-completed",
    M,
    "completed antibiotic order covering days before the visit: not excluded (isMedicationActive)",
    [*episode(), antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10, status="completed")],
)
case(
    "cms146-prior-abx-long-ago",
    M,
    "active antibiotic order ending more than 30 days before the visit: not excluded",
    [*episode(), antibiotic("prior", "2025-01-10T09:00:00Z", supply_days=10)],
)
case(
    "cms146-competing-3d",
    M,
    "competing diagnosis 3 days after the visit: excluded",
    [*episode(), diagnosis("cd", COMPETING, "2025-03-07T20:00:00Z")],
)
case(
    "cms146-competing-4d",
    M,
    "competing diagnosis 4 days after the visit: not excluded",
    [*episode(), diagnosis("cd", COMPETING, "2025-03-08T08:00:00Z")],
)
case(
    "cms146-visit-dec-28",
    M,
    "visit ending 28 December (3 days before the period ends): an episode",
    [
        patient(birth=ADULT),
        visit(start="2025-12-28T09:00:00Z", end="2025-12-28T09:30:00Z"),
        diagnosis("ph", PHARYNGITIS, "2025-12-28T09:05:00Z"),
        antibiotic(authored="2025-12-28T09:25:00Z"),
    ],
)
case(
    "cms146-visit-dec-29",
    M,
    "visit ending 29 December: no episode",
    [
        patient(birth=ADULT),
        visit(start="2025-12-29T09:00:00Z", end="2025-12-29T09:30:00Z"),
        diagnosis("ph", PHARYNGITIS, "2025-12-29T09:05:00Z"),
        antibiotic(authored="2025-12-29T09:25:00Z"),
    ],
)
case(
    "cms146-two-visits",
    M,
    "two pharyngitis visits, one tested: two episodes, one in the numerator",
    [
        *episode(),
        strep_test(),
        visit("e2", "2025-06-10T09:00:00Z", "2025-06-10T09:30:00Z"),
        diagnosis("ph2", PHARYNGITIS, "2025-06-10T09:05:00Z"),
        antibiotic("abx2", "2025-06-10T09:25:00Z"),
    ],
)
case(
    "cms146-date-only-onset",
    M,
    "pharyngitis with a date-only onset on the visit's day: an episode",
    [patient(birth=ADULT), visit(), diagnosis("ph", PHARYNGITIS, "2025-03-04"), antibiotic(), strep_test()],
)
case(
    "cms146-ed-visit",
    M,
    "an emergency department visit (CPT 99283) is a qualifying visit",
    [patient(birth=ADULT), visit(cpt="99283"), diagnosis("ph", PHARYNGITIS), antibiotic(), strep_test()],
)
