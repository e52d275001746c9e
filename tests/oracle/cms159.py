"""CMS159 depression remission at twelve months: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient
from .cases import case

M = "CMS159"
VISIT = "2024-03-04T09:00:00Z"


def depression(
    verification: str = "confirmed", onset: str = "2023-06-01", code: str = "F32.1"
) -> dict[str, Any]:
    resource = condition("mdd", code, system=ICD10, onset=onset)
    resource["verificationStatus"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}
        ]
    }
    return resource


def phq9(oid: str, score: int, when: str) -> dict[str, Any]:
    return coded_obs(oid, "44261-6", when, value=score, value_kind="integer", category="survey")


def index_patient(
    birth: str = "1980-05-01", visit: str = VISIT, score: int = 15, **kw: Any
) -> list[dict[str, Any]]:
    """An index assessment of ``score`` at a depression visit."""
    return [
        patient(birth=birth),
        depression(**kw),
        encounter("v", visit, end=visit.replace("T09:00", "T09:45"), cpt="99214"),
        phq9("i", score, visit.replace("T09:00", "T09:10")),
    ]


case(
    "cms159-remission",
    M,
    "index 15, PHQ-9 of 3 twelve months later: numerator",
    [*index_patient(), phq9("f", 3, "2025-03-10T09:00:00Z")],
)
case(
    "cms159-no-remission",
    M,
    "index 15, PHQ-9 of 8 twelve months later: not met",
    [*index_patient(), phq9("f", 8, "2025-03-10T09:00:00Z")],
)
case("cms159-no-follow-up", M, "index 15 and no later PHQ-9: denominator only", index_patient())
case(
    "cms159-follow-up-too-late",
    M,
    "remission PHQ-9 61 days after the anniversary: outside the assessment period",
    [*index_patient(), phq9("f", 3, "2025-05-04T09:00:00Z")],
)
case(
    "cms159-follow-up-day-60",
    M,
    "remission PHQ-9 60 days after the anniversary: inside",
    [*index_patient(), phq9("f", 3, "2025-05-03T09:00:00Z")],
)
case(
    "cms159-last-follow-up-decides",
    M,
    "PHQ-9 3 in February then 9 in April: the last of the assessment period decides",
    [*index_patient(), phq9("f1", 3, "2025-02-01T09:00:00Z"), phq9("f2", 9, "2025-04-01T09:00:00Z")],
)
case(
    "cms159-first-index-decides",
    M,
    "two index-eligible visits (March and June 2024): the first anchors the assessment period",
    [
        *index_patient(),
        encounter("v2", "2024-06-03T09:00:00Z", end="2024-06-03T09:45:00Z", cpt="99214"),
        phq9("i2", 20, "2024-06-03T09:10:00Z"),
        phq9("f", 3, "2025-06-20T09:00:00Z"),
    ],
)
case("cms159-score-9", M, "PHQ-9 of exactly 9 at the visit: no index assessment", index_patient(score=9))
case(
    "cms159-unconfirmed",
    M,
    "depression diagnosis provisional, not confirmed: no depression visit",
    index_patient(verification="provisional"),
)
case(
    "cms159-visit-after-window",
    M,
    "visit on 15 November 2024: after the denominator identification period",
    index_patient(visit="2024-11-15T09:00:00Z"),
)
case(
    "cms159-assessment-7-days-before",
    M,
    "PHQ-9 taken 7 days before the visit: index",
    [*index_patient()[:3], phq9("i", 15, "2024-02-26T09:10:00Z"), phq9("f", 3, "2025-02-26T09:00:00Z")],
)
case(
    "cms159-assessment-8-days-before",
    M,
    "PHQ-9 taken 8 days before the visit: not an index assessment",
    [*index_patient()[:3], phq9("i", 15, "2024-02-25T09:10:00Z")],
)
case(
    "cms159-age-11",
    M,
    "11 at the index assessment: not in the initial population",
    index_patient(birth="2012-03-05"),
)
case(
    "cms159-age-12",
    M,
    "12 on the day of the index assessment: initial population",
    index_patient(birth="2012-03-04"),
)
case(
    "cms159-bipolar",
    M,
    "confirmed active bipolar disorder: denominator exclusion",
    [*index_patient(), {**depression(code="F31.9"), "id": "bp"}],
)
case(
    "cms159-died",
    M,
    "died 1 April 2025, before the end of the assessment period: denominator exclusion",
    [{**index_patient()[0], "deceasedDateTime": "2025-04-01"}, *index_patient()[1:]],
)
case(
    "cms159-palliative-encounter",
    M,
    "palliative care encounter in August 2024: denominator exclusion",
    [*index_patient(), encounter("pal", "2024-08-01T09:00:00Z", system=SNOMED, cpt="305686008")],
)
