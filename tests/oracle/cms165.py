"""CMS165 controlling high blood pressure: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, bp_panel, condition, encounter, patient, quantity_obs
from .cases import case

M = "CMS165"


def hypertensive(
    birth: str = "1960-05-01", *, onset: str = "2020-01-01", visit: str = "2025-03-04T09:00:00Z", **kw: Any
) -> list[dict[str, Any]]:
    """A patient with essential hypertension and an office visit in the period."""
    return [
        patient(birth=birth),
        condition("htn", "I10", system=ICD10, onset=onset, **kw),
        encounter(start=visit),
    ]


case(
    "cms165-controlled",
    M,
    "BP panel 128/82 at the visit: numerator",
    [*hypertensive(), bp_panel("bp", 128, 82)],
)
case(
    "cms165-uncontrolled",
    M,
    "BP panel 150/95: not in the numerator",
    [*hypertensive(), bp_panel("bp", 150, 95)],
)
case(
    "cms165-diastolic-90", M, "diastolic exactly 90: not below 90", [*hypertensive(), bp_panel("bp", 120, 90)]
)
case(
    "cms165-systolic-139",
    M,
    "systolic 139, diastolic 89: numerator",
    [*hypertensive(), bp_panel("bp", 139, 89)],
)
case("cms165-no-bp", M, "no blood pressure: denominator only", hypertensive())
case(
    "cms165-lowest-of-latest-day",
    M,
    "two panels on the latest day, 150/85 and 135/95: lowest systolic 135 and lowest diastolic 85 count",
    [
        *hypertensive(),
        bp_panel("bp1", 150, 85, "2025-03-04T09:10:00Z"),
        bp_panel("bp2", 135, 95, "2025-03-04T09:40:00Z"),
    ],
)
case(
    "cms165-latest-day-decides",
    M,
    "controlled in March, uncontrolled in October: the most recent day decides",
    [
        *hypertensive(),
        bp_panel("bp1", 120, 70, "2025-03-04T09:10:00Z"),
        encounter("e2", "2025-10-02T09:00:00Z"),
        bp_panel("bp2", 152, 94, "2025-10-02T09:10:00Z", eid="e2"),
    ],
)
case(
    "cms165-panel-55284-4",
    M,
    "BP only as the older 55284-4 panel: not a BP observation by the QI-Core profile"
    " (deviation bp-panel-55284-4)",
    [*hypertensive(), bp_panel("bp", 120, 70, code="55284-4")],
)
case(
    "cms165-separate-observations",
    M,
    "systolic 8480-6 and diastolic 8462-4 as separate Observations: the CQL reads the bp panel's"
    " components only"
    " (deviation bp-separate-observations)",
    [
        *hypertensive(),
        quantity_obs("sbp", "8480-6", 120, "mm[Hg]", category="vital-signs"),
        quantity_obs("dbp", "8462-4", 70, "mm[Hg]", category="vital-signs"),
    ],
)
case(
    "cms165-ed-reading",
    M,
    "the only controlled reading was taken in an emergency encounter: it does not count",
    [
        *hypertensive(),
        encounter("ed", "2025-06-01T09:00:00Z", klass="EMER", cpt="99283"),
        bp_panel("bp", 120, 70, "2025-06-01T09:10:00Z", eid="ed"),
    ],
)
case("cms165-age-18", M, "18 at the end of the period: initial population", hypertensive("2007-12-31"))
case(
    "cms165-age-17",
    M,
    "17 at the end of the period: not in the initial population",
    hypertensive("2008-01-01"),
)
case("cms165-age-85", M, "85 at the end of the period: initial population", hypertensive("1940-01-01"))
case(
    "cms165-age-86",
    M,
    "86 at the end of the period: not in the initial population",
    hypertensive("1939-12-31"),
)
case(
    "cms165-onset-july",
    M,
    "hypertension diagnosed on 1 July: after the first six months, not in the initial population",
    hypertensive(onset="2025-07-01"),
)
case(
    "cms165-onset-june-30",
    M,
    "hypertension diagnosed on 30 June: overlaps the first six months",
    hypertensive(onset="2025-06-30"),
)
case(
    "cms165-refuted-hypertension",
    M,
    "the hypertension Condition is refuted: the CQL reads no verificationStatus"
    " (deviation ignore-refuted-conditions)",
    [
        *hypertensive()[:1],
        {**condition("htn", "I10", system=ICD10), "verificationStatus": {"coding": [{"code": "refuted"}]}},
        encounter(),
        bp_panel("bp", 120, 70),
    ],
)
case(
    "cms165-hospice-encounter",
    M,
    "a hospice encounter in the period: denominator exclusion",
    [
        *hypertensive(),
        encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006"),
        bp_panel("bp", 120, 70),
    ],
)
case(
    "cms165-palliative",
    M,
    "palliative care encounter in the period: denominator exclusion",
    [
        *hypertensive(),
        encounter("pal", "2025-05-01T09:00:00Z", system=SNOMED, cpt="305686008"),
    ],
)
case(
    "cms165-esrd",
    M,
    "end-stage renal disease before the end of the period: denominator exclusion",
    [*hypertensive(), condition("esrd", "N18.6", system=ICD10, onset="2023-02-01")],
)
case(
    "cms165-frail-81",
    M,
    "82 with a frailty diagnosis in the period: denominator exclusion",
    [
        *hypertensive("1943-02-01"),
        condition("frail", "R54", system=ICD10, onset="2025-02-01"),
    ],
)
case(
    "cms165-frail-70-no-illness",
    M,
    "70 with frailty but no advanced illness: stays in the denominator",
    [*hypertensive("1955-02-01"), condition("frail", "R54", system=ICD10, onset="2025-02-01")],
)
case(
    "cms165-frail-70-advanced-illness",
    M,
    "70 with frailty and advanced illness (two outpatient diagnoses): denominator exclusion",
    [
        *hypertensive("1955-02-01"),
        condition("frail", "R54", system=ICD10, onset="2025-02-01"),
        condition("ill", "C25.0", system=ICD10, onset="2025-01-15"),
        encounter("ill1", "2025-01-15T09:00:00Z", diagnoses=["ill"]),
        encounter("ill2", "2025-02-15T09:00:00Z", diagnoses=["ill"]),
    ],
)
