"""CMS90 functional status assessments for heart failure: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient
from .cases import case

M = "CMS90"
PROMIS10 = ("71969-0", "71971-6")
PROMIS29 = ("71955-9", "71957-5", "71959-1", "71961-7", "71963-3", "71965-8", "71967-4")
VR12_OBLIQUE = ("72026-8", "72025-0")
KCCQ_TOTAL = ("71940-1",)
MLHFQ_TOTAL = ("71938-5",)
VISIT_1 = "2025-03-04T09:00:00Z"
VISIT_2 = "2025-06-10T09:00:00Z"
INITIAL = "2025-03-01T10:00:00Z"
FOLLOW = "2025-05-01T10:00:00Z"


def assessed(
    prefix: str, when: str, codes: tuple[str, ...] = PROMIS10, *, skip: int | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """Every score of an instrument at ``when`` (survey, final, valueQuantity 50), but score ``skip``."""
    return [
        coded_obs(f"{prefix}{n}", code, when, value=50 + n, **kw) for n, code in enumerate(codes) if n != skip
    ]


def heart_failure(
    *, birth: str = "1960-05-01", onset: str = "2020-01-01", visits: tuple[str, ...] = (VISIT_1, VISIT_2)
) -> list[dict[str, Any]]:
    """Heart failure (I50.1) since 2020 and office visits on 4 March and 10 June 2025."""
    resources = [patient(birth=birth), condition("hf", "I50.1", system=ICD10, onset=onset)]
    resources += [encounter(f"e{n}", when) for n, when in enumerate(visits, 1)]
    return resources


def paired(
    initial: str = INITIAL, follow: str = FOLLOW, codes: tuple[str, ...] = PROMIS10
) -> list[dict[str, Any]]:
    return [*assessed("a", initial, codes), *assessed("b", follow, codes)]


case(
    "cms90-promis10",
    M,
    "PROMIS-10 3 days before the first visit and 61 days later: numerator",
    [*heart_failure(), *paired()],
)
case("cms90-no-assessment", M, "no assessment: denominator", heart_failure())
case(
    "cms90-initial-14-days",
    M,
    "initial PROMIS-10 on 18 February (14 days before the visit): numerator",
    [*heart_failure(), *paired("2025-02-18T10:00:00Z")],
)
case(
    "cms90-initial-15-days",
    M,
    "initial PROMIS-10 on 17 February (15 days before the visit): denominator",
    [*heart_failure(), *paired("2025-02-17T10:00:00Z", "2025-04-20T10:00:00Z")],
)
case(
    "cms90-initial-after-visit",
    M,
    "initial PROMIS-10 the day after the first visit (and 3 months before the second): denominator",
    [*heart_failure(), *paired("2025-03-05T10:00:00Z", "2025-05-01T10:00:00Z")],
)
case(
    "cms90-follow-30-days",
    M,
    "follow-up 30 days after the initial assessment: numerator",
    [*heart_failure(), *paired(follow="2025-03-31T10:00:00Z")],
)
case(
    "cms90-follow-29-days",
    M,
    "follow-up 29 days after the initial assessment: denominator",
    [*heart_failure(), *paired(follow="2025-03-30T10:00:00Z")],
)
case(
    "cms90-follow-180-days",
    M,
    "follow-up 180 days after the initial assessment (28 August): numerator",
    [*heart_failure(), *paired(follow="2025-08-28T10:00:00Z")],
)
case(
    "cms90-follow-181-days",
    M,
    "follow-up 181 days after the initial assessment: denominator",
    [*heart_failure(), *paired(follow="2025-08-29T10:00:00Z")],
)
case(
    "cms90-follow-incomplete",
    M,
    "the follow-up lacks the physical health score: denominator",
    [*heart_failure(), *assessed("a", INITIAL), *assessed("b", FOLLOW, skip=1)],
)
case(
    "cms90-initial-split-days",
    M,
    "the initial scores are on two days: denominator",
    [
        *heart_failure(),
        *assessed("a", INITIAL, skip=1),
        *assessed("c", "2025-03-02T10:00:00Z", skip=0),
        *assessed("b", FOLLOW),
    ],
)
case(
    "cms90-initial-preliminary",
    M,
    "the initial scores are preliminary: denominator",
    [*heart_failure(), *assessed("a", INITIAL, status="preliminary"), *assessed("b", FOLLOW)],
)
case(
    "cms90-not-survey",
    M,
    "the initial scores have no survey category: denominator",
    [*heart_failure(), *assessed("a", INITIAL, category=None), *assessed("b", FOLLOW)],
)
case(
    "cms90-no-value",
    M,
    "an initial score has no value: denominator",
    [
        *heart_failure(),
        coded_obs("a0", PROMIS10[0], INITIAL),
        *assessed("a", INITIAL, skip=0),
        *assessed("b", FOLLOW),
    ],
)
case(
    "cms90-visit-180-days-before-end",
    M,
    "visits on 4 July (180 days before the period's end) and 1 September: numerator",
    [
        *heart_failure(visits=("2025-07-04T09:00:00Z", "2025-09-01T09:00:00Z")),
        *paired("2025-07-01T10:00:00Z", "2025-09-01T10:00:00Z"),
    ],
)
case(
    "cms90-visit-too-late",
    M,
    "visits on 5 July (179 days before the period's end) and 1 September: denominator",
    [
        *heart_failure(visits=("2025-07-05T09:00:00Z", "2025-09-01T09:00:00Z")),
        *paired("2025-07-02T10:00:00Z", "2025-09-01T10:00:00Z"),
    ],
)
case(
    "cms90-kccq-total",
    M,
    "KCCQ overall summary score before the visit and 2 months later: numerator",
    [*heart_failure(), *paired(codes=KCCQ_TOTAL)],
)
case(
    "cms90-promis29",
    M,
    "all seven PROMIS-29 scores before the visit and 2 months later: numerator",
    [*heart_failure(), *paired(codes=PROMIS29)],
)
case(
    "cms90-promis29-incomplete",
    M,
    "PROMIS-29 without its anxiety score at the initial assessment: denominator",
    [*heart_failure(), *assessed("a", INITIAL, PROMIS29, skip=6), *assessed("b", FOLLOW, PROMIS29)],
)
case(
    "cms90-mlhfq-total",
    M,
    "only MLHFQ total scores (not read by the CQL): denominator",
    [*heart_failure(), *paired(codes=MLHFQ_TOTAL)],
)
case(
    "cms90-mixed-instruments",
    M,
    "PROMIS-10 first, VR-12 oblique at follow-up: denominator",
    [*heart_failure(), *assessed("a", INITIAL), *assessed("b", FOLLOW, VR12_OBLIQUE)],
)
case(
    "cms90-one-visit",
    M,
    "a single visit: not in the population",
    [*heart_failure(visits=(VISIT_1,)), *paired()],
)
case(
    "cms90-visits-same-day",
    M,
    "two visits on the same day: not in the population",
    [*heart_failure(visits=(VISIT_1, "2025-03-04T14:00:00Z")), *paired()],
)
case(
    "cms90-visits-next-day",
    M,
    "visits on 4 and 5 March: in the population",
    [*heart_failure(visits=(VISIT_1, "2025-03-05T09:00:00Z")), *paired()],
)
case(
    "cms90-age-17",
    M,
    "17 at the start of the period: not in the population",
    [*heart_failure(birth="2007-06-01"), *paired()],
)
case(
    "cms90-heart-failure-in-period",
    M,
    "heart failure starting in February 2025: not in the population",
    [*heart_failure(onset="2025-02-01"), *paired()],
)
case(
    "cms90-hospice",
    M,
    "hospice encounter in the period: excluded",
    [*heart_failure(), *paired(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
case(
    "cms90-severe-cognitive-impairment",
    M,
    "severe cognitive impairment (any status) overlapping the period: excluded",
    [*heart_failure(), *paired(), condition("sci", "702956004", system=SNOMED, onset="2024-05-01")],
)
case(
    "cms90-heart-failure-resolved",
    M,
    "heart failure resolved in June 2024 (abatement): not in the population",
    [
        patient(birth="1960-05-01"),
        condition("hf", "I50.1", system=ICD10, onset="2020-01-01", status="resolved", abatement="2024-06-01"),
        encounter("e1", VISIT_1),
        encounter("e2", VISIT_2),
        *paired(),
    ],
)
case(
    "cms90-heart-failure-inactive",
    M,
    "heart failure inactive, without an abatement date: the prevalence's end is unknown",
    [
        patient(birth="1960-05-01"),
        condition("hf", "I50.1", system=ICD10, onset="2020-01-01", status="inactive"),
        encounter("e1", VISIT_1),
        encounter("e2", VISIT_2),
        *paired(),
    ],
)
case(
    "cms90-telephone-visits",
    M,
    "two telephone visits (CPT 99442): in the population",
    [
        patient(birth="1960-05-01"),
        condition("hf", "I50.1", system=ICD10, onset="2020-01-01"),
        encounter("e1", VISIT_1, cpt="99442"),
        encounter("e2", VISIT_2, cpt="99442"),
        *paired(),
    ],
)
