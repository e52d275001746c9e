"""CMS124 cervical cancer screening: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, HCPCS, ICD10, coded_obs, condition, encounter, patient, procedure
from .cases import case

M = "CMS124"


def woman(birth: str = "1980-05-01", gender: str = "female", **kw: Any) -> list[dict[str, Any]]:
    """A woman with an office visit in the period."""
    return [patient(birth=birth, gender=gender), encounter(**kw)]


def lab(oid: str, code: str, when: str, **kw: Any) -> dict[str, Any]:
    """A lab result with a coded value (negative)."""
    kw.setdefault("category", "laboratory")
    kw.setdefault("value_code", "260385009")
    return coded_obs(oid, code, when, **kw)


def pap(when: str = "2025-02-10T08:00:00Z", **kw: Any) -> dict[str, Any]:
    return lab("pap", "10524-7", when, **kw)


def hpv(when: str = "2025-02-10T08:00:00Z", **kw: Any) -> dict[str, Any]:
    return lab("hpv", "59263-4", when, **kw)


case("cms124-pap", M, "Pap test with a result in the period: numerator", [*woman(), pap()])
case(
    "cms124-pap-2023-01-01",
    M,
    "Pap test on 1 Jan two years before the period: numerator (first day of 3 years)",
    [*woman(), pap("2023-01-01T08:00:00Z")],
)
case("cms124-pap-2022-12-31", M, "Pap test on 31 Dec 2022: too old", [*woman(), pap("2022-12-31T08:00:00Z")])
case(
    "cms124-pap-no-value",
    M,
    "Pap test without a result: not counted",
    [*woman(), pap(value_code=None)],
)
case(
    "cms124-pap-no-category",
    M,
    "Pap test without the laboratory category: not a performed lab test",
    [*woman(), pap(category=None)],
)
case(
    "cms124-hpv-2021-01-01",
    M,
    "HPV test on 1 Jan 2021 at 40: numerator (first day of 5 years)",
    [*woman(), hpv("2021-01-01T08:00:00Z")],
)
case("cms124-hpv-2020-12-31", M, "HPV test on 31 Dec 2020: too old", [*woman(), hpv("2020-12-31T08:00:00Z")])
case(
    "cms124-hpv-at-29",
    M,
    "HPV test the day before her 30th birthday: not counted",
    [*woman("1994-06-01"), hpv("2024-05-31T08:00:00Z")],
)
case(
    "cms124-hpv-at-30",
    M,
    "HPV test on her 30th birthday: numerator",
    [*woman("1994-06-01"), hpv("2024-06-01T08:00:00Z")],
)
case("cms124-age-24", M, "24 at the end of the period: initial population", woman("2001-12-31"))
case("cms124-age-23", M, "23 at the end of the period: not in the initial population", woman("2002-01-01"))
case("cms124-age-64", M, "64 at the end of the period: initial population", woman("1961-01-01"))
case("cms124-age-65", M, "65 at the end of the period: not in the initial population", woman("1960-12-31"))
case("cms124-male", M, "a man: not in the initial population", woman(gender="male"))
case(
    "cms124-wellness-visit-only",
    M,
    "only an annual wellness visit (G0438), not one of this measure's encounters:"
    " not in the initial population",
    woman(cpt="G0438", system=HCPCS),
)
case(
    "cms124-hysterectomy",
    M,
    "hysterectomy with no residual cervix in 2015: denominator exclusion",
    [*woman(), procedure("hx", "58293", "2015-06-01T09:00:00Z", system=CPT)],
)
case(
    "cms124-hysterectomy-2026",
    M,
    "hysterectomy after the period: not excluded",
    [*woman(), procedure("hx", "58293", "2026-01-05T09:00:00Z", system=CPT)],
)
case(
    "cms124-absent-cervix",
    M,
    "acquired absence of cervix and uterus (Z90.710): denominator exclusion",
    [*woman(), condition("ab", "Z90.710", system=ICD10, onset="2019-01-01")],
)
