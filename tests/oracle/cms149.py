"""CMS149 dementia cognitive assessment: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, coded_obs, condition, encounter, not_done_obs, patient
from .cases import case

M = "CMS149"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def dementia(verification: str | None = None, **kw: Any) -> dict[str, Any]:
    made = condition("dem", "F03.90", system=ICD10, onset="2022-01-01", **kw)
    if verification is not None:
        made["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    return made


def visits(status: str = "finished") -> list[dict[str, Any]]:
    """An office visit on 4 March (09:00-09:30) and a patient-provider interaction (not an encounter to
    assess cognition) on 1 June: two qualifying encounters, one dementia encounter."""
    return [
        encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z", status=status),
        encounter("e2", "2025-06-01T09:00:00Z", system=SNOMED, cpt="185316007"),
    ]


def demented(**kw: Any) -> list[dict[str, Any]]:
    return [patient(birth="1945-05-01"), dementia(**kw), *visits()]


def assessment(when: str = "2025-03-04T09:10:00Z", **kw: Any) -> dict[str, Any]:
    """A standardized cognition score (LOINC 72106-8) with a value."""
    kw.setdefault("value", 24)
    return coded_obs("mmse", "72106-8", when, **kw)


case("cms149-assessed", M, "score at the dementia visit: numerator", [*demented(), assessment()])
case(
    "cms149-assessed-12-months-before",
    M,
    "score 12 months before the visit's end day: numerator",
    [*demented(), assessment("2024-03-04T08:00:00Z")],
)
case(
    "cms149-assessed-too-early",
    M,
    "score 12 months and a day before the visit: not met",
    [*demented(), assessment("2024-03-03T08:00:00Z")],
)
case(
    "cms149-assessed-after-visit",
    M,
    "score the day after the only dementia visit: not met",
    [*demented(), assessment("2025-03-05T08:00:00Z")],
)
case(
    "cms149-assessed-no-value",
    M,
    "score without a value: not met",
    [*demented(), assessment(value=None)],
)
case(
    "cms149-assessed-preliminary",
    M,
    "preliminary score: counts (final, amended, corrected or preliminary)",
    [*demented(), assessment(status="preliminary")],
)
case(
    "cms149-cognitive-assessment-snomed",
    M,
    "cognitive assessment procedure code (SNOMED 113024001) as an Observation with a value: numerator",
    [*demented(), coded_obs("ca", "113024001", "2025-03-04T09:10:00Z", system=SNOMED, value_code="17621005")],
)
case(
    "cms149-declined",
    M,
    "assessment not done for a patient reason, issued during the visit: denominator exception",
    [*demented(), not_done_obs("nd", "72106-8", "182890002", "2025-03-04T09:10:00Z")],
)
case(
    "cms149-declined-next-day",
    M,
    "assessment not done for a patient reason, issued the next day: no exception",
    [*demented(), not_done_obs("nd", "72106-8", "182890002", "2025-03-05T09:10:00Z")],
)
case(
    "cms149-one-encounter",
    M,
    "a single dementia visit: not in the initial population (needs two qualifying encounters)",
    [patient(birth="1945-05-01"), dementia(), visits()[0], assessment()],
)
case(
    "cms149-refuted",
    M,
    "dementia refuted: not in the initial population",
    demented(verification="refuted"),
)
case(
    "cms149-unconfirmed",
    M,
    "dementia unconfirmed: not in the initial population",
    demented(verification="unconfirmed"),
)
case(
    "cms149-confirmed",
    M,
    "dementia confirmed: initial population",
    demented(verification="confirmed"),
)
case(
    "cms149-resolved",
    M,
    "dementia resolved in 2024: not in the initial population",
    demented(status="resolved", abatement="2024-06-01"),
)
case(
    "cms149-dementia-visit-cancelled",
    M,
    "the dementia visit is cancelled but two other finished encounters qualify: initial population"
    " (an encounter to assess cognition has no status test)",
    [
        patient(birth="1945-05-01"),
        dementia(),
        *visits(status="cancelled"),
        encounter("e3", "2025-07-01T09:00:00Z", system=SNOMED, cpt="185316007"),
    ],
)
case(
    "cms149-no-dementia",
    M,
    "two visits without dementia: not in the initial population",
    [patient(birth="1945-05-01"), *visits(), assessment()],
)
