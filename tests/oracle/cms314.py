"""CMS314 HIV viral suppression: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import encounter, patient
from .cases import case
from .hiv import BELOW_THRESHOLD, NOT_DETECTED, hiv, viral_load

M = "CMS314"
VISIT = "2025-03-04T09:00:00Z"


def in_care(onset: str | None = "2019-06-01", visit: str = VISIT, **kw: Any) -> list[dict[str, Any]]:
    """A patient with HIV since 2019 and an office visit on 4 March 2025."""
    return [patient(birth="1980-05-01", gender="male"), hiv(onset, **kw), encounter("e1", visit)]


case("cms314-suppressed", M, "viral load 50 copies/mL in June: numerator", [*in_care(), viral_load()])
case("cms314-not-suppressed", M, "viral load 250 copies/mL: denominator", [*in_care(), viral_load(value=250)])
case(
    "cms314-vl-200", M, "viral load exactly 200 copies/mL: not below 200", [*in_care(), viral_load(value=200)]
)
case("cms314-no-test", M, "no viral load test in the period: denominator", in_care())
case(
    "cms314-not-detected",
    M,
    "the last viral load is coded not detected: numerator",
    [*in_care(), viral_load(coded=NOT_DETECTED)],
)
case(
    "cms314-below-threshold",
    M,
    "the last viral load is coded below threshold level: numerator",
    [*in_care(), viral_load(coded=BELOW_THRESHOLD)],
)
case(
    "cms314-last-decides-high",
    M,
    "50 in March, then 500 in September: the last one decides, not met",
    [
        *in_care(),
        viral_load("vl1", 50, "2025-03-04T10:00:00Z"),
        viral_load("vl2", 500, "2025-09-01T10:00:00Z"),
    ],
)
case(
    "cms314-last-decides-low",
    M,
    "500 in March, then not detected in September: the last one decides, met",
    [
        *in_care(),
        viral_load("vl1", 500, "2025-03-04T10:00:00Z"),
        viral_load("vl2", coded=NOT_DETECTED, when="2025-09-01T10:00:00Z"),
    ],
)
case(
    "cms314-test-last-year",
    M,
    "the only suppressed test is in December 2024: not met",
    [*in_care(), viral_load(when="2024-12-15T10:00:00Z")],
)
case(
    "cms314-preliminary-test",
    M,
    "a preliminary result of 40 copies/mL: the CQL reads no status, numerator",
    [*in_care(), viral_load(value=40, status="preliminary")],
)
case(
    "cms314-test-period-ends-in-year",
    M,
    "a specimen period from 30 December 2024 to 2 January 2025 ends in the period: its latest time counts",
    [*in_care(), viral_load(when="2024-12-30T10:00:00Z", period_end="2025-01-02T10:00:00Z")],
)
case(
    "cms314-onset-day-90",
    M,
    "HIV onset 31 March 2025 (before day 91): in the population",
    [*in_care("2025-03-31"), viral_load()],
)
case(
    "cms314-onset-day-91",
    M,
    "HIV onset 1 April 2025: not in the population",
    [*in_care("2025-04-01"), viral_load()],
)
case(
    "cms314-hiv-resolved",
    M,
    "HIV diagnosis resolved in 2022: the CQL reads no clinical status, still in the population",
    [*in_care(status="resolved", abatement="2022-01-01"), viral_load()],
)
case(
    "cms314-hiv-no-onset",
    M,
    "HIV diagnosis without an onset: its prevalence has no start, not in the population",
    [*in_care(None), viral_load()],
)
case(
    "cms314-visit-day-240",
    M,
    "the only visit on 29 August (period start + 240 days): in the population",
    [*in_care(visit="2025-08-29T10:00:00Z"), viral_load()],
)
case(
    "cms314-visit-day-241",
    M,
    "the only visit on 30 August: not in the population",
    [*in_care(visit="2025-08-30T10:00:00Z"), viral_load()],
)
case(
    "cms314-telephone-visit",
    M,
    "the only visit is a telephone visit (CPT 99442): in the population",
    [patient(birth="1980-05-01", gender="male"), hiv(), encounter("e1", VISIT, cpt="99442"), viral_load()],
)
case(
    "cms314-cancelled-visit",
    M,
    "the only visit was cancelled: the CQL reads no encounter status, in the population",
    [
        patient(birth="1980-05-01", gender="male"),
        hiv(),
        encounter("e1", VISIT, status="cancelled"),
        viral_load(),
    ],
)
