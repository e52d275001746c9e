"""CMS1188 STI testing for people with HIV: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import encounter, patient
from .cases import case
from .hiv import CHLAMYDIA, CT_NG, GONORRHEA, SYPHILIS, hiv, sti_panel, sti_test

M = "CMS1188"
VISIT = "2025-05-20T09:00:00Z"


def in_care(
    birth: str = "1990-07-01", onset: str = "2019-06-01", visit: str = VISIT, **kw: Any
) -> list[dict[str, Any]]:
    """A patient with HIV since 2019 and an office visit on 20 May 2025."""
    return [patient(birth=birth, gender="male"), hiv(onset), encounter("e1", visit, **kw)]


case(
    "cms1188-all-three",
    M,
    "chlamydia, gonorrhea and syphilis tests in the period: numerator",
    [*in_care(), *sti_panel()],
)
case(
    "cms1188-no-syphilis",
    M,
    "chlamydia and gonorrhea tested, no syphilis test: denominator",
    [*in_care(), *sti_panel()[:2]],
)
case("cms1188-no-tests", M, "no STI test: denominator", in_care())
case(
    "cms1188-ct-ng-panel",
    M,
    "one chlamydia and gonorrhea panel (44807-6, in both value sets) and a syphilis test: numerator",
    [*in_care(), sti_test("ctng", CT_NG), sti_test("syph", SYPHILIS)],
)
case(
    "cms1188-preliminary-chlamydia",
    M,
    "the chlamydia result is preliminary: not counted, denominator",
    [*in_care(), sti_test("ct", CHLAMYDIA, status="preliminary"), *sti_panel()[1:]],
)
case(
    "cms1188-gonorrhea-no-result",
    M,
    "the gonorrhea test has no value (data absent): not counted, denominator",
    [
        *in_care(),
        sti_test("ct", CHLAMYDIA),
        sti_test("ng", GONORRHEA, result=None),
        sti_test("syph", SYPHILIS),
    ],
)
case(
    "cms1188-tests-last-year",
    M,
    "all three tests in December 2024: denominator",
    [*in_care(), *sti_panel("2024-12-10T10:00:00Z")],
)
case(
    "cms1188-age-13",
    M,
    "13th birthday on 1 January 2025: in the population",
    [*in_care(birth="2012-01-01"), *sti_panel()],
)
case(
    "cms1188-age-12",
    M,
    "13th birthday on 2 January 2025 (12 at the start of the period): not in the population",
    [*in_care(birth="2012-01-02"), *sti_panel()],
)
case(
    "cms1188-onset-dec-31",
    M,
    "HIV diagnosed on 31 December 2025: in the population",
    [*in_care(onset="2025-12-31"), *sti_panel()],
)
case(
    "cms1188-onset-next-year",
    M,
    "HIV onset 1 January 2026: not in the population",
    [*in_care(onset="2026-01-01"), *sti_panel()],
)
case(
    "cms1188-visit-last-year",
    M,
    "the only visit is in December 2024: not in the population",
    [*in_care(visit="2024-12-10T09:00:00Z"), *sti_panel()],
)
case(
    "cms1188-visit-into-next-year",
    M,
    "the only visit starts 31 December and ends 1 January 2026: not during the period",
    [*in_care(visit="2025-12-31T22:00:00Z", end="2026-01-01T01:00:00Z"), *sti_panel()],
)
case(
    "cms1188-cancelled-visit",
    M,
    "the only visit was cancelled: the CQL reads no encounter status, in the population",
    [*in_care(status="cancelled"), *sti_panel()],
)
case(
    "cms1188-preventive-other",
    M,
    "the only visit is an unlisted preventive service (CPT 99429): in the population",
    [*in_care(cpt="99429"), *sti_panel()],
)
