"""CMS771 urinary symptom score change 6-12 months after a BPH diagnosis: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, coded_obs, encounter, patient, quantity_obs
from .cases import case
from .heart import confirmed

M = "CMS771"
IPSS = "80976-4"  # LOINC International Prostate Symptom Score
AUASI = "80883-2"  # LOINC AUA symptom index
QOL = "81090-3"  # LOINC IPSS quality-of-life item
ONSET = "2024-10-01T09:00:00Z"
FIRST = "2024-10-15T10:00:00Z"
FOLLOW = "2025-06-02T10:00:00Z"


def score(
    oid: str, value: Any, when: str, *, code: str = IPSS, kind: str = "integer", **kw: Any
) -> dict[str, Any]:
    return coded_obs(oid, code, when, value=value, value_kind=kind, **kw)


def bph(onset: str = ONSET, **kw: Any) -> dict[str, Any]:
    return confirmed("bph", "N40.1", system=ICD10, onset=onset, **kw)


def base(*, onset: str = ONSET, gender: str = "male", klass: str = "AMB", **kw: Any) -> list[dict[str, Any]]:
    """A man with BPH from 1 October 2024 and a finished office visit on 4 March 2025."""
    return [patient(birth="1955-03-01", gender=gender), bph(onset, **kw), encounter("e1", klass=klass)]


def scored(first: Any = 18, follow: Any = 12, **kw: Any) -> list[dict[str, Any]]:
    """``base`` with an IPSS on 15 October 2024 and another on 2 June 2025 (valueInteger)."""
    return [*base(**kw), score("s1", first, FIRST), score("s2", follow, FOLLOW)]


case("cms771-improved", M, "IPSS 18 then 12 (change 6): numerator", scored())
case("cms771-change-3", M, "IPSS 18 then 15 (change 3, the threshold): numerator", scored(18, 15))
case("cms771-change-2", M, "IPSS 18 then 16 (change 2): denominator", scored(18, 16))
case("cms771-worse", M, "IPSS 12 then 18 (worse): denominator", scored(12, 18))
case(
    "cms771-quantity",
    M,
    "IPSS sent as valueQuantity: in the population, no integer score (value as Integer is null)",
    [*base(), score("s1", 18, FIRST, kind="quantity"), score("s2", 10, FOLLOW, kind="quantity")],
)
case(
    "cms771-auasi-plus-qol",
    M,
    "AUA index 15 plus same-day QoL 4 (19), then IPSS 16: change 3, numerator",
    [
        *base(),
        score("s1", 15, FIRST, code=AUASI),
        score("q1", 4, "2024-10-15T10:05:00Z", code=QOL),
        score("s2", 16, FOLLOW),
    ],
)
case(
    "cms771-auasi-no-qol",
    M,
    "AUA index 15 without a QoL answer then IPSS 10: in the population, the first score is null",
    [*base(), score("s1", 15, FIRST, code=AUASI), score("s2", 10, FOLLOW)],
)
case(
    "cms771-auasi-qol-other-day",
    M,
    "AUA index 15 with the QoL answer the next day then IPSS 10: the first score is null",
    [
        *base(),
        score("s1", 15, FIRST, code=AUASI),
        score("q1", 4, "2024-10-16T10:00:00Z", code=QOL),
        score("s2", 10, FOLLOW),
    ],
)
case(
    "cms771-auasi-follow-up",
    M,
    "IPSS 20 then AUA index 12 plus QoL 3 (15) on the follow-up day: change 5, numerator",
    [
        *base(),
        score("s1", 20, FIRST),
        score("s2", 12, FOLLOW, code=AUASI),
        score("q2", 3, "2025-06-02T11:00:00Z", code=QOL),
    ],
)
case(
    "cms771-first-1-month",
    M,
    "first IPSS on 1 November 2024 (1 month after the diagnosis): numerator",
    [*base(), score("s1", 18, "2024-11-01T10:00:00Z"), score("s2", 12, FOLLOW)],
)
case(
    "cms771-first-too-late",
    M,
    "first IPSS on 2 November 2024 (1 month and a day after): not in the population",
    [*base(), score("s1", 18, "2024-11-02T10:00:00Z"), score("s2", 12, FOLLOW)],
)
case(
    "cms771-first-before-diagnosis",
    M,
    "the only early IPSS is the day before the diagnosis: not in the population",
    [*base(), score("s1", 18, "2024-09-30T10:00:00Z"), score("s2", 12, FOLLOW)],
)
case(
    "cms771-first-of-two",
    M,
    "two IPSS in the first month (18, then 13): the first counts, change 6 against 12, numerator",
    [*scored(), score("s3", 13, "2024-10-20T10:00:00Z")],
)
case(
    "cms771-follow-6-months",
    M,
    "follow-up IPSS on 1 April 2025 (6 months after): numerator",
    [*base(), score("s1", 18, FIRST), score("s2", 12, "2025-04-01T10:00:00Z")],
)
case(
    "cms771-follow-too-early",
    M,
    "follow-up IPSS on 31 March 2025 (5 months): not in the population",
    [*base(), score("s1", 18, FIRST), score("s2", 12, "2025-03-31T10:00:00Z")],
)
case(
    "cms771-follow-12-months",
    M,
    "follow-up IPSS on 31 October 2025 (12 months and 30 days: months between is 12): numerator",
    [*base(), score("s1", 18, FIRST), score("s2", 12, "2025-10-31T10:00:00Z")],
)
case(
    "cms771-follow-too-late",
    M,
    "follow-up IPSS on 1 November 2025 (13 months): not in the population",
    [*base(), score("s1", 18, FIRST), score("s2", 12, "2025-11-01T10:00:00Z")],
)
case(
    "cms771-last-follow-up",
    M,
    "follow-ups 10 (May) and 17 (September): the last counts, change 1, denominator",
    [
        *base(),
        score("s1", 18, FIRST),
        score("s2", 10, "2025-05-01T10:00:00Z"),
        score("s3", 17, "2025-09-01T10:00:00Z"),
    ],
)
case(
    "cms771-follow-preliminary",
    M,
    "the follow-up IPSS is preliminary: not in the population",
    [*base(), score("s1", 18, FIRST), score("s2", 12, FOLLOW, status="preliminary")],
)
case(
    "cms771-diagnosis-window-start",
    M,
    "BPH on 1 July 2024 (6 months before the period): numerator",
    [
        *base(onset="2024-07-01T09:00:00Z"),
        score("s1", 18, "2024-07-20T10:00:00Z"),
        score("s2", 12, "2025-03-01T10:00:00Z"),
    ],
)
case(
    "cms771-diagnosis-too-early",
    M,
    "BPH on 30 June 2024: not in the population",
    [
        *base(onset="2024-06-30T09:00:00Z"),
        score("s1", 18, "2024-07-20T10:00:00Z"),
        score("s2", 12, "2025-03-01T10:00:00Z"),
    ],
)
case("cms771-unconfirmed", M, "BPH provisional: not in the population", scored(verification="provisional"))
case("cms771-female", M, "a woman: not in the population", scored(gender="female"))
case("cms771-virtual-visit", M, "the only office visit is virtual: not in the population", scored(klass="VR"))
case(
    "cms771-retention",
    M,
    "urinary retention (R33.9) in March 2025, within a year of the diagnosis: excluded",
    [*scored(), confirmed("ur", "R33.9", system=ICD10, onset="2025-03-01T09:00:00Z")],
)
case(
    "cms771-retention-late",
    M,
    "urinary retention on 2 October 2025 (a year and a day later): not excluded",
    [*scored(), confirmed("ur", "R33.9", system=ICD10, onset="2025-10-02T09:00:00Z")],
)
case(
    "cms771-urology-stay",
    M,
    "BPH 6 days after a finished urology hospital stay: excluded",
    [
        *scored(),
        encounter("h1", "2024-09-20T09:00:00Z", end="2024-09-25T12:00:00Z", klass="IMP", cpt="99221"),
    ],
)
case(
    "cms771-urology-stay-long-before",
    M,
    "BPH 36 days after a urology hospital stay: not excluded",
    [
        *scored(),
        encounter("h1", "2024-08-20T09:00:00Z", end="2024-08-26T08:00:00Z", klass="IMP", cpt="99221"),
    ],
)
case(
    "cms771-morbid-obesity",
    M,
    "morbid obesity (E66.01) since 2023, active: excluded",
    [*scored(), confirmed("mo", "E66.01", system=ICD10, onset="2023-01-01T09:00:00Z")],
)
case(
    "cms771-morbid-obesity-later",
    M,
    "morbid obesity starting after the follow-up score: not excluded",
    [*scored(), confirmed("mo", "E66.01", system=ICD10, onset="2025-07-01T09:00:00Z")],
)
case(
    "cms771-bmi-40",
    M,
    "BMI 40 kg/m2 in February 2025, before the follow-up: excluded",
    [
        *scored(),
        quantity_obs("bmi", "39156-5", 40, "kg/m2", "2025-02-01T10:00:00Z", eid=None, category="vital-signs"),
    ],
)
case(
    "cms771-bmi-39",
    M,
    "BMI 39.9 kg/m2 before the follow-up: not excluded",
    [
        *scored(),
        quantity_obs(
            "bmi", "39156-5", 39.9, "kg/m2", "2025-02-01T10:00:00Z", eid=None, category="vital-signs"
        ),
    ],
)
case(
    "cms771-follow-6-months-earlier-time",
    M,
    "follow-up on 1 April 2025 at 08:00, before the diagnosis's time of day (09:00): months between is 5",
    [*base(), score("s1", 18, FIRST), score("s2", 12, "2025-04-01T08:00:00Z")],
)
case(
    "cms771-follow-13-months-earlier-time",
    M,
    "follow-up on 1 November 2025 at 08:00, before the diagnosis's time of day: months between is 12",
    [*base(), score("s1", 18, FIRST), score("s2", 12, "2025-11-01T08:00:00Z")],
)
case(
    "cms771-date-only-diagnosis",
    M,
    "BPH onset a date (1 October 2024), follow-up on 1 April 2025: months between a date and a time is"
    " uncertain (5 or 6), so the CQL does not count it",
    [*base(onset="2024-10-01"), score("s1", 18, FIRST), score("s2", 12, "2025-04-01T10:00:00Z")],
)
case(
    "cms771-urology-stay-31-days",
    M,
    "BPH at 09:00 31 days after a urology stay ending at 10:00: excluded (end + 31 days is 10:00)",
    [
        *scored(),
        encounter("h1", "2024-08-25T09:00:00Z", end="2024-08-31T10:00:00Z", klass="IMP", cpt="99221"),
    ],
)
case(
    "cms771-urology-stay-31-days-earlier-time",
    M,
    "BPH at 09:00 31 days after a urology stay ending at 08:00: not excluded (compared to the instant)",
    [
        *scored(),
        encounter("h1", "2024-08-25T09:00:00Z", end="2024-08-31T08:00:00Z", klass="IMP", cpt="99221"),
    ],
)
case(
    "cms771-auasi-last-qol-of-the-day",
    M,
    "AUA index 15 with QoL answers 4 (10:05) and 1 (10:30) that day: the last counts (16), then IPSS 14:"
    " change 2, denominator",
    [
        *base(),
        score("s1", 15, FIRST, code=AUASI),
        score("q1", 4, "2024-10-15T10:05:00Z", code=QOL),
        score("q2", 1, "2024-10-15T10:30:00Z", code=QOL),
        score("s2", 14, FOLLOW),
    ],
)
case(
    "cms771-first-unscored",
    M,
    "the first assessment is an AUA index without QoL (no score), an IPSS 18 follows in the month: the first"
    " counts, denominator",
    [
        *base(),
        score("s0", 15, "2024-10-10T10:00:00Z", code=AUASI),
        score("s1", 18, "2024-10-20T10:00:00Z"),
        score("s2", 12, FOLLOW),
    ],
)
