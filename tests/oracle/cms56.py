"""CMS56 functional status assessment for total hip replacement: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, condition, encounter, patient, procedure
from .cases import case
from .cms90 import PROMIS10, assessed

M = "CMS56"
HOOS = ("72093-8", "72094-6", "72095-3", "72096-1", "72097-9")
HOOSJR = ("82323-7",)
VR12_ORTHOGONAL = ("72028-4", "72027-6")
THA_DAY = "2024-03-04T08:00:00Z"
INITIAL = "2024-02-20T10:00:00Z"
FOLLOW = "2025-01-15T10:00:00Z"


def tha(when: str = THA_DAY, rid: str = "tha", **kw: Any) -> dict[str, Any]:
    return procedure(rid, "27130", when, system=CPT, **kw)


def hip(
    *,
    birth: str = "1955-03-01",
    tha_at: str = THA_DAY,
    visit: str = "2025-03-04T09:00:00Z",
    cpt: str = "99213",
) -> list[dict[str, Any]]:
    """A total hip arthroplasty on 4 March 2024 and an office visit on 4 March 2025."""
    return [patient(birth=birth), tha(tha_at), encounter("e1", visit, cpt=cpt)]


def paired(
    initial: str = INITIAL, follow: str = FOLLOW, codes: tuple[str, ...] = PROMIS10
) -> list[dict[str, Any]]:
    return [*assessed("a", initial, codes), *assessed("b", follow, codes)]


case(
    "cms56-promis10", M, "PROMIS-10 13 days before the THA and 317 days after: numerator", [*hip(), *paired()]
)
case("cms56-no-assessment", M, "no assessment: denominator", hip())
case("cms56-hoos", M, "all five HOOS scores before and after: numerator", [*hip(), *paired(codes=HOOS)])
case(
    "cms56-hoos-incomplete",
    M,
    "HOOS without its pain score at follow-up: denominator",
    [*hip(), *assessed("a", INITIAL, HOOS), *assessed("b", FOLLOW, HOOS, skip=4)],
)
case("cms56-hoosjr", M, "HOOS JR before and after: numerator", [*hip(), *paired(codes=HOOSJR)])
case(
    "cms56-vr12-orthogonal",
    M,
    "VR-12 orthogonal before and after: numerator",
    [*hip(), *paired(codes=VR12_ORTHOGONAL)],
)
case(
    "cms56-initial-90-days",
    M,
    "initial assessment on 5 December 2023 (90 days before the THA): numerator",
    [*hip(), *paired("2023-12-05T10:00:00Z")],
)
case(
    "cms56-initial-91-days",
    M,
    "initial assessment on 4 December 2023 (91 days before): denominator",
    [*hip(), *paired("2023-12-04T10:00:00Z")],
)
case(
    "cms56-initial-same-day",
    M,
    "initial assessment on the THA's day: numerator",
    [*hip(), *paired("2024-03-04T07:00:00Z")],
)
case(
    "cms56-initial-after",
    M,
    "initial assessment the day after the THA: denominator",
    [*hip(), *paired("2024-03-05T10:00:00Z")],
)
case(
    "cms56-follow-300-days",
    M,
    "follow-up on 29 December 2024 (300 days after): numerator",
    [*hip(), *paired(follow="2024-12-29T10:00:00Z")],
)
case(
    "cms56-follow-299-days",
    M,
    "follow-up on 28 December 2024 (299 days after): denominator",
    [*hip(), *paired(follow="2024-12-28T10:00:00Z")],
)
case(
    "cms56-follow-425-days",
    M,
    "follow-up on 3 May 2025 (425 days after): numerator",
    [*hip(), *paired(follow="2025-05-03T10:00:00Z")],
)
case(
    "cms56-follow-426-days",
    M,
    "follow-up on 4 May 2025 (426 days after): denominator",
    [*hip(), *paired(follow="2025-05-04T10:00:00Z")],
)
case(
    "cms56-mixed-instruments",
    M,
    "PROMIS-10 before, VR-12 orthogonal after: denominator",
    [*hip(), *assessed("a", INITIAL), *assessed("b", FOLLOW, VR12_ORTHOGONAL)],
)
case(
    "cms56-tha-window-start",
    M,
    "THA on 1 November 2023: in the population",
    hip(tha_at="2023-11-01T10:00:00Z"),
)
case(
    "cms56-tha-too-early",
    M,
    "THA on 31 October 2023: not in the population",
    hip(tha_at="2023-10-31T10:00:00Z"),
)
case(
    "cms56-tha-window-end", M, "THA on 31 October 2024: in the population", hip(tha_at="2024-10-31T10:00:00Z")
)
case(
    "cms56-tha-too-late",
    M,
    "THA on 1 November 2024: not in the population",
    hip(tha_at="2024-11-01T10:00:00Z"),
)
case(
    "cms56-tha-not-completed",
    M,
    "the THA is in progress: not in the population",
    [patient(birth="1955-03-01"), tha(status="in-progress"), encounter("e1")],
)
case(
    "cms56-visit-august",
    M,
    "only visit on 1 August 2024: in the population",
    hip(visit="2024-08-01T09:00:00Z"),
)
case(
    "cms56-visit-july",
    M,
    "only visit on 31 July 2024: not in the population",
    hip(visit="2024-07-31T09:00:00Z"),
)
case(
    "cms56-postop-visit",
    M,
    "only a postoperative follow-up visit (CPT 99024): in the population",
    hip(cpt="99024"),
)
case("cms56-age-18", M, "18 at the start of the period: not in the population", hip(birth="2006-02-01"))
case(
    "cms56-fracture-hours-before",
    M,
    "hip fracture 12 hours before the THA: excluded",
    [*hip(), *paired(), condition("fx", "S72.001A", system=ICD10, onset="2024-03-03T20:00:00Z")],
)
case(
    "cms56-fracture-days-before",
    M,
    "hip fracture 2 days before the THA: not excluded",
    [*hip(), *paired(), condition("fx", "S72.001A", system=ICD10, onset="2024-03-02T08:00:00Z")],
)
case(
    "cms56-partial-same-day",
    M,
    "partial hip arthroplasty (CPT 27125) on the THA's day: excluded",
    [*hip(), *paired(), procedure("pha", "27125", "2024-03-04T11:00:00Z", system=CPT)],
)
case(
    "cms56-revision-same-day",
    M,
    "revision (CPT 27134) on the THA's day: excluded",
    [*hip(), *paired(), procedure("rev", "27134", "2024-03-04T11:00:00Z", system=CPT)],
)
case(
    "cms56-revision-later",
    M,
    "revision a month after the THA: not excluded",
    [*hip(), *paired(), procedure("rev", "27134", "2024-04-04T11:00:00Z", system=CPT)],
)
case(
    "cms56-neoplasm",
    M,
    "malignant neoplasm of the femur (C40.20) since 2023, overlapping the THA: excluded",
    [*hip(), *paired(), condition("ca", "C40.20", system=ICD10, onset="2023-06-01")],
)
case(
    "cms56-mechanical-complication",
    M,
    "mechanical complication (T84.010D) overlapping the THA: excluded",
    [*hip(), *paired(), condition("mc", "T84.010D", system=ICD10, onset="2024-01-01")],
)
case(
    "cms56-second-tha",
    M,
    "a second primary THA 6 months after: excluded",
    [*hip(), *paired(), tha("2024-09-04T08:00:00Z", rid="tha2")],
)
case(
    "cms56-earlier-tha",
    M,
    "another primary THA 13 months before (outside the window and the year): not excluded",
    [*hip(), *paired(), tha("2023-02-01T08:00:00Z", rid="tha2")],
)
case(
    "cms56-died-within-300-days",
    M,
    "died on 1 December 2024 (272 days after the THA): excluded",
    [
        {**hip(visit="2024-09-01T09:00:00Z")[0], "deceasedDateTime": "2024-12-01T10:00:00Z"},
        *hip(visit="2024-09-01T09:00:00Z")[1:],
        *assessed("a", INITIAL),
    ],
)
case(
    "cms56-died-after-300-days",
    M,
    "died on 5 January 2025 (307 days after the THA): not excluded",
    [
        {**hip()[0], "deceasedDateTime": "2025-01-05T10:00:00Z"},
        *hip()[1:],
        *paired(follow="2025-01-01T10:00:00Z"),
    ],
)
case(
    "cms56-hospice",
    M,
    "hospice encounter in the period: excluded",
    [*hip(), *paired(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
case(
    "cms56-severe-cognitive-impairment",
    M,
    "severe cognitive impairment overlapping the period: excluded",
    [*hip(), *paired(), condition("sci", "702956004", system=SNOMED, onset="2024-05-01")],
)
case(
    "cms56-fracture-25-hours-before",
    M,
    "hip fracture 25 hours before the THA: not excluded",
    [*hip(), *paired(), condition("fx", "S72.001A", system=ICD10, onset="2024-03-03T07:00:00Z")],
)
case(
    "cms56-fracture-24-hours-before",
    M,
    "hip fracture exactly 24 hours before the THA: excluded",
    [*hip(), *paired(), condition("fx", "S72.001A", system=ICD10, onset="2024-03-03T08:00:00Z")],
)
case(
    "cms56-died-boolean",
    M,
    "deceasedBoolean true (no date): not excluded",
    [{**hip()[0], "deceasedBoolean": True}, *hip()[1:], *paired()],
)
