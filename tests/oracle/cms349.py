"""CMS349 HIV screening: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, coded_obs, condition, encounter, patient
from .cases import case
from .heart import confirmed

M = "CMS349"
NEGATIVE = "260385009"


def adult(birth: str = "1985-05-01", *, status: str = "finished", **kw: Any) -> list[dict[str, Any]]:
    """A patient with an office visit (99213) on 4 March 2025."""
    return [patient(birth=birth, **kw), encounter(status=status)]


def hiv_test(when: str = "2025-03-04T09:10:00Z", code: str = "56888-1", **kw: Any) -> dict[str, Any]:
    """An HIV 1+2 antibody and p24 antigen test with a negative result (laboratory category)."""
    kw.setdefault("category", "laboratory")
    kw.setdefault("value_code", NEGATIVE)
    return coded_obs("hiv", code, when, **kw)


case("cms349-tested-in-period", M, "HIV test with a result in the period: numerator", [*adult(), hiv_test()])
case(
    "cms349-tested-2010",
    M,
    "HIV test in 2010 at 25: numerator (any time before the end of the period)",
    [*adult(), hiv_test("2010-06-01T09:00:00Z")],
)
case(
    "cms349-tested-2026",
    M,
    "HIV test after the period: denominator only",
    [*adult(), hiv_test("2026-01-02T09:00:00Z")],
)
case(
    "cms349-tested-dec-31",
    M,
    "HIV test on the last day of the period: numerator",
    [*adult(), hiv_test("2025-12-31T20:00:00Z")],
)
case(
    "cms349-tested-day-before-15",
    M,
    "HIV test the day before the 15th birthday: not counted",
    [*adult("2005-06-01"), hiv_test("2020-05-31T09:00:00Z")],
)
case(
    "cms349-tested-on-15th-birthday",
    M,
    "HIV test on the 15th birthday: numerator",
    [*adult("2005-06-01"), hiv_test("2020-06-01T09:00:00Z")],
)
case(
    "cms349-tested-at-66",
    M,
    "65 at the start of the period, HIV test in July after the 66th birthday: not counted",
    [*adult("1959-06-01"), hiv_test("2025-07-01T09:00:00Z")],
)
case(
    "cms349-test-no-value",
    M,
    "HIV test without a result: not counted",
    [*adult(), hiv_test(value_code=None)],
)
case(
    "cms349-test-preliminary",
    M,
    "preliminary HIV test: not counted (final, amended or corrected)",
    [*adult(), hiv_test(status="preliminary")],
)
case(
    "cms349-test-no-category",
    M,
    "HIV test without a category: numerator (the CQL reads no category)",
    [*adult(), hiv_test(category=None)],
)
case(
    "cms349-test-75622-1",
    M,
    "HIV 1 and 2 tests - Meaningful Use set (75622-1): numerator",
    [*adult(), hiv_test(code="75622-1")],
)
case("cms349-age-14", M, "14 at the start of the period: not in the initial population", adult("2010-01-02"))
case("cms349-age-15", M, "15 on the first day of the period: initial population", adult("2010-01-01"))
case("cms349-age-65", M, "65 at the start of the period: initial population", adult("1959-01-02"))
case("cms349-age-66", M, "66 at the start of the period: not in the initial population", adult("1959-01-01"))
case(
    "cms349-visit-in-progress",
    M,
    "the only visit is in progress: not in the initial population (finished only)",
    adult(status="in-progress"),
)
case(
    "cms349-hiv-2020",
    M,
    "HIV diagnosis since 2020: denominator exclusion",
    [*adult(), condition("hiv-dx", "B20", system=ICD10, onset="2020-01-01")],
)
case(
    "cms349-hiv-dec-31",
    M,
    "HIV diagnosis starting on the day before the period: denominator exclusion",
    [*adult(), condition("hiv-dx", "Z21", system=ICD10, onset="2024-12-31")],
)
case(
    "cms349-hiv-in-period",
    M,
    "HIV diagnosis starting on the first day of the period: not excluded",
    [*adult(), condition("hiv-dx", "B20", system=ICD10, onset="2025-01-01")],
)
case(
    "cms349-hiv-refuted",
    M,
    "HIV diagnosis since 2020, refuted: not excluded",
    [*adult(), confirmed("hiv-dx", "B20", system=ICD10, verification="refuted")],
)
case(
    "cms349-hiv-resolved",
    M,
    "HIV diagnosis since 2018, resolved in 2019, confirmed: excluded (any clinical status)",
    [
        *adult(),
        confirmed(
            "hiv-dx", "B20", system=ICD10, onset="2018-01-01", status="resolved", abatement="2019-01-01"
        ),
    ],
)
case(
    "cms349-deceased",
    M,
    "died in June 2025, not tested: denominator (the Measure has no denominator-exception population)",
    [{**adult()[0], "deceasedDateTime": "2025-06-01T10:00:00Z"}, adult()[1]],
)
