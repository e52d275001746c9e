"""CMS153 chlamydia screening in women: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import (
    CPT,
    ICD10,
    RXNORM,
    SNOMED,
    coded_obs,
    condition,
    encounter,
    patient,
    procedure,
    request,
)
from .cases import case

M = "CMS153"
STI_LAB = "5292-8"  # Lab Tests for Sexually Transmitted Infections
PREGNANCY_TEST = "2106-3"
XRAY = "36643-5"  # XRay Study
ISOTRETINOIN = "197843"
CONTRACEPTIVE = "1000126"


def woman(birth: str = "2005-05-01", gender: str = "female") -> list[dict[str, Any]]:
    """A woman (20 at the end of the period) with an office visit on 4 March 2025."""
    return [patient(birth=birth, gender=gender), encounter()]


def order(rid: str, code: str, authored: str = "2025-03-04T09:25:00Z", **kw: Any) -> dict[str, Any]:
    """A lab or imaging order (ServiceRequest, LOINC)."""
    kw.setdefault("system", "http://loinc.org")
    return request("ServiceRequest", rid, code, authored, **kw)


def medication(rid: str, code: str, authored: str = "2025-03-04T09:25:00Z", **kw: Any) -> dict[str, Any]:
    return request("MedicationRequest", rid, code, authored, system=RXNORM, **kw)


def chlamydia_test(when: str = "2025-03-04T09:10:00Z", **kw: Any) -> dict[str, Any]:
    """A Chlamydia trachomatis NAA test (21613-5) with a negative result."""
    kw.setdefault("category", "laboratory")
    kw.setdefault("value_code", "260385009")
    return coded_obs("ct", "21613-5", when, **kw)


def sti_order() -> dict[str, Any]:
    return order("sti", STI_LAB)


def pregnancy_test(then: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A pregnancy test ordered on 1 May 2025, and what was ordered after it."""
    return [order("preg", PREGNANCY_TEST, "2025-05-01T10:00:00Z"), *([then] if then else [])]


case(
    "cms153-screened",
    M,
    "20, STI lab test ordered, chlamydia test with a result in the period: numerator, stratum 16-20",
    [*woman(), sti_order(), chlamydia_test()],
)
case(
    "cms153-not-screened-21",
    M,
    "21 with a chlamydia diagnosis (sexual activity), not tested: denominator, stratum 21-24",
    [*woman("2004-05-01"), condition("dx", "A56.01", system=ICD10, onset="2024-11-01")],
)
case(
    "cms153-age-16",
    M,
    "16 on the last day of the period: initial population",
    [*woman("2009-12-31"), sti_order()],
)
case(
    "cms153-age-15",
    M,
    "15 at the end of the period: not in the initial population",
    [*woman("2010-01-01"), sti_order()],
)
case(
    "cms153-age-24", M, "24 at the end of the period: initial population", [*woman("2001-01-01"), sti_order()]
)
case(
    "cms153-age-25",
    M,
    "25 at the end of the period: not in the initial population",
    [*woman("2000-12-31"), sti_order()],
)
case(
    "cms153-male",
    M,
    "a man with an STI lab order: not in the initial population",
    [*woman(gender="male"), sti_order()],
)
case(
    "cms153-no-sexual-activity",
    M,
    "a woman tested for chlamydia with nothing showing sexual activity: not in the initial population",
    [*woman(), chlamydia_test()],
)
case(
    "cms153-assessment-yes-2023",
    M,
    "'ever had vaginal intercourse' answered yes in 2023: initial population",
    [*woman(), coded_obs("sa", "64728-9", "2023-06-01T09:00:00Z", value_code="373066001")],
)
case(
    "cms153-contraceptive-supply-into-period",
    M,
    "active contraceptive ordered in November 2024 with 90 days' supply (into 2025): initial population",
    [*woman(), medication("oc", CONTRACEPTIVE, "2024-11-01T09:00:00Z", supply_days=90)],
)
case(
    "cms153-contraceptive-supply-ended",
    M,
    "active contraceptive ordered in June 2024 with 30 days' supply: not in the initial population",
    [*woman(), medication("oc", CONTRACEPTIVE, "2024-06-01T09:00:00Z", supply_days=30)],
)
case(
    "cms153-contraceptive-do-not-perform",
    M,
    "only a contraceptive order with doNotPerform (MedicationNotRequested): not in the initial population",
    [*woman(), medication("oc", CONTRACEPTIVE, do_not_perform=True)],
)
case(
    "cms153-procedure",
    M,
    "IUD insertion (CPT 58300) in the period: initial population",
    [*woman(), procedure("iud", "58300", system=CPT)],
)
case(
    "cms153-pregnancy-test-only",
    M,
    "only a pregnancy test ordered: initial population, not excluded (no x-ray or isotretinoin after it)",
    [*woman(), *pregnancy_test()],
)
case(
    "cms153-pregnancy-test-xray-6-days",
    M,
    "pregnancy test, then an x-ray ordered 6 days later: denominator exclusion",
    [*woman(), *pregnancy_test(order("xr", XRAY, "2025-05-07T08:00:00Z"))],
)
case(
    "cms153-pregnancy-test-xray-7-days",
    M,
    "pregnancy test, then an x-ray ordered 7 days later: not excluded",
    [*woman(), *pregnancy_test(order("xr", XRAY, "2025-05-08T08:00:00Z"))],
)
case(
    "cms153-pregnancy-test-xray-day-before",
    M,
    "x-ray ordered the day before the pregnancy test: not excluded",
    [*woman(), *pregnancy_test(order("xr", XRAY, "2025-04-30T08:00:00Z"))],
)
case(
    "cms153-pregnancy-test-isotretinoin",
    M,
    "pregnancy test, then isotretinoin ordered 2 days later: denominator exclusion",
    [*woman(), *pregnancy_test(medication("iso", ISOTRETINOIN, "2025-05-03T09:00:00Z"))],
)
case(
    "cms153-pregnancy-test-xray-and-sti",
    M,
    "pregnancy test and x-ray, but also an STI lab order: not excluded (other sexual activity)",
    [*woman(), *pregnancy_test(order("xr", XRAY, "2025-05-02T08:00:00Z")), sti_order()],
)
case(
    "cms153-hospice",
    M,
    "hospice encounter in the period: denominator exclusion",
    [*woman(), sti_order(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
case(
    "cms153-test-2024",
    M,
    "chlamydia test with a result on 31 December 2024: not in the period",
    [*woman(), sti_order(), chlamydia_test("2024-12-31T15:00:00Z")],
)
