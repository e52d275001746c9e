"""CMS2 depression screening and follow-up: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, coded_obs, condition, encounter, not_done_obs, patient, procedure
from .cases import case

M = "CMS2"
NEGATIVE, POSITIVE = "428171000124102", "428181000124104"


def visit(birth: str = "1980-05-01", when: str = "2025-03-04T09:00:00Z") -> list[dict[str, Any]]:
    return [patient(birth=birth), encounter(start=when, end=when.replace("T09:00", "T09:30"))]


def screen(
    code: str = "73832-8", result: str | None = NEGATIVE, when: str = "2025-03-04T09:10:00Z", **kw: Any
):
    return coded_obs("s", code, when, value_code=result, category=None, **kw)


case("cms2-adult-negative", M, "adult screened negative at the visit: numerator", [*visit(), screen()])
case(
    "cms2-adult-positive-no-plan",
    M,
    "adult screened positive, no follow-up: not in the numerator",
    [*visit(), screen(result=POSITIVE)],
)
case(
    "cms2-adult-positive-follow-up",
    M,
    "adult screened positive with a follow-up procedure during the visit: numerator",
    [*visit(), screen(result=POSITIVE), procedure("f", "108313002", "2025-03-04T09:20:00Z")],
)
case(
    "cms2-adult-not-screened", M, "adult with a qualifying visit and no screening: denominator only", visit()
)
case(
    "cms2-screen-14-days-before",
    M,
    "negative screening 14 days before the visit: counts",
    [*visit(), screen(when="2025-02-18T09:10:00Z")],
)
case(
    "cms2-screen-15-days-before",
    M,
    "negative screening 15 days before the visit: too early",
    [*visit(), screen(when="2025-02-17T09:10:00Z")],
)
case(
    "cms2-screen-after-visit",
    M,
    "negative screening the day after the visit: does not count",
    [*visit(), screen(when="2025-03-05T09:10:00Z")],
)
case(
    "cms2-phq9-total-low",
    M,
    "adult with only a PHQ-9 total of 4: the CQL reads coded results of 73832-8 only (deviation phq-totals)",
    [*visit(), coded_obs("s", "44261-6", "2025-03-04T09:10:00Z", value=4, category="survey")],
)
case(
    "cms2-phq2-total-high",
    M,
    "adult with only a PHQ-2 total of 5: not a screening by the CQL (deviation phq-totals)",
    [*visit(), coded_obs("s", "55758-7", "2025-03-04T09:10:00Z", value=5, category="survey")],
)
case(
    "cms2-adolescent-negative",
    M,
    "15 at the start of the period, adolescent screening negative: numerator",
    [*visit("2010-03-01"), screen("73831-0")],
)
case(
    "cms2-adolescent-adult-tool",
    M,
    "15 at the start of the period screened with the adult tool: not the adolescent screening",
    [*visit("2010-03-01"), screen("73832-8")],
)
case(
    "cms2-age-17-adult-tool",
    M,
    "17 at the start of the period, adult tool negative: either tool counts at 17",
    [*visit("2007-06-01"), screen("73832-8")],
)
case("cms2-age-11", M, "11 at the start of the period: not in the initial population", visit("2013-01-02"))
case(
    "cms2-age-12",
    M,
    "12 on the first day of the period: initial population",
    [*visit("2013-01-01"), screen("73831-0")],
)
case(
    "cms2-bipolar",
    M,
    "bipolar disorder on the problem list before the visit: denominator exclusion",
    [*visit(), condition("bp", "F31.9", system=ICD10, onset="2021-01-01", category="problem-list-item")],
)
case(
    "cms2-bipolar-encounter-diagnosis",
    M,
    "bipolar disorder only as an encounter diagnosis: not the problem list, no exclusion",
    [*visit(), condition("bp", "F31.9", system=ICD10, onset="2021-01-01", category="encounter-diagnosis")],
)
case(
    "cms2-declined",
    M,
    "adult screening not done, patient declined, during the visit: denominator exception",
    [*visit(), not_done_obs("nd", "73832-8", "720834000", "2025-03-04T09:15:00Z")],
)
case(
    "cms2-preliminary-screen",
    M,
    "negative screening with status preliminary: not final, does not count",
    [*visit(), screen(status="preliminary")],
)
