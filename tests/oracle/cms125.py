"""CMS125 breast cancer screening: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient, procedure
from .cases import case

M = "CMS125"


def woman(birth: str = "1962-05-01", gender: str = "female") -> list[dict[str, Any]]:
    """A woman with an office visit in the period."""
    return [patient(birth=birth, gender=gender), encounter()]


def mammogram(when: str = "2025-02-10T08:00:00Z", status: str = "final") -> dict[str, Any]:
    return coded_obs("mg", "24606-6", when, status=status, category="imaging")


def sided(cid: str, code: str, side: str | None, **kw: Any) -> dict[str, Any]:
    """A Condition with a bodySite (SNOMED side: 24028007 right, 7771000 left)."""
    made = condition(cid, code, system=SNOMED, **kw)
    if side is not None:
        made["bodySite"] = [{"coding": [{"system": SNOMED, "code": side}]}]
    return made


case("cms125-mammogram", M, "mammogram in the period: numerator", [*woman(), mammogram()])
case(
    "cms125-mammogram-oct-1",
    M,
    "mammogram on 1 October two years before the period: numerator (first day of the window)",
    [*woman(), mammogram("2023-10-01T08:00:00Z")],
)
case(
    "cms125-mammogram-sep-30",
    M,
    "mammogram on 30 September two years before: too old",
    [*woman(), mammogram("2023-09-30T08:00:00Z")],
)
case(
    "cms125-mammogram-preliminary",
    M,
    "preliminary mammogram report: not a performed diagnostic study",
    [*woman(), mammogram(status="preliminary")],
)
case("cms125-no-mammogram", M, "no mammogram: denominator only", woman())
case("cms125-age-52", M, "52 at the end of the period: initial population", woman("1973-12-31"))
case("cms125-age-51", M, "51 at the end of the period: not in the initial population", woman("1974-01-01"))
case("cms125-age-74", M, "74 at the end of the period: initial population", woman("1951-01-01"))
case("cms125-age-75", M, "75 at the end of the period: not in the initial population", woman("1950-12-31"))
case("cms125-male", M, "a man: not in the initial population", woman(gender="male"))
case(
    "cms125-no-visit",
    M,
    "no qualifying visit (only an inpatient stay code): not in the initial population",
    [patient(birth="1962-05-01"), encounter(cpt="183452005", system=SNOMED, klass="IMP"), mammogram()],
)
case(
    "cms125-bilateral-procedure",
    M,
    "bilateral simple mastectomy in 2015: denominator exclusion",
    [*woman(), procedure("mx", "22418005", "2015-06-01T09:00:00Z")],
)
case(
    "cms125-bilateral-history",
    M,
    "acquired absence of both breasts (Z90.13): denominator exclusion",
    [*woman(), condition("hx", "Z90.13", system=ICD10, onset="2018-01-01")],
)
case(
    "cms125-right-and-left",
    M,
    "status post right mastectomy (Z90.11) and a left mastectomy procedure: denominator exclusion",
    [
        *woman(),
        condition("r", "Z90.11", system=ICD10, onset="2019-01-01"),
        procedure("l", "428571003", "2021-04-01T09:00:00Z"),
    ],
)
case(
    "cms125-right-only",
    M,
    "right mastectomy only: stays in the denominator",
    [*woman(), procedure("r", "429400009", "2021-04-01T09:00:00Z"), mammogram()],
)
case(
    "cms125-unilateral-right-body-site",
    M,
    "unilateral mastectomy with body site right, and status post left: denominator exclusion",
    [
        *woman(),
        sided("u", "73359007", "24028007", onset="2019-01-01"),
        condition("l", "Z90.12", system=ICD10, onset="2020-01-01"),
    ],
)
case(
    "cms125-unilateral-no-body-site",
    M,
    "unilateral mastectomy without a body site, and status post left: not excluded",
    [
        *woman(),
        sided("u", "73359007", None, onset="2019-01-01"),
        condition("l", "Z90.12", system=ICD10, onset="2020-01-01"),
    ],
)
case(
    "cms125-left-procedure-2026",
    M,
    "right mastectomy and a left one performed after the period: not excluded",
    [
        *woman(),
        condition("r", "Z90.11", system=ICD10, onset="2019-01-01"),
        procedure("l", "428571003", "2026-01-02T09:00:00Z"),
    ],
)
case(
    "cms125-frail-70-advanced-illness",
    M,
    "70 with frailty and advanced illness: denominator exclusion",
    [
        *woman("1955-02-01"),
        condition("frail", "L89.000", system=ICD10, onset="2025-02-01"),
        condition("ill", "C25.0", system=ICD10, onset="2025-01-15"),
    ],
)
case(
    "cms125-frail-65-advanced-illness",
    M,
    "65 with frailty and advanced illness: too young for the exclusion",
    [
        *woman("1960-02-01"),
        condition("frail", "L89.000", system=ICD10, onset="2025-02-01"),
        condition("ill", "C25.0", system=ICD10, onset="2025-01-15"),
    ],
)
case(
    "cms125-palliative",
    M,
    "palliative care encounter in the period: denominator exclusion",
    [*woman(), encounter("pal", "2025-05-01T09:00:00Z", system=SNOMED, cpt="305686008"), mammogram()],
)
case(
    "cms125-nursing-home-70",
    M,
    "70 and the latest housing status says nursing home: denominator exclusion",
    [*woman("1955-02-01"), coded_obs("hs", "71802-3", "2025-06-01T09:00:00Z", value_code="160734000")],
)
