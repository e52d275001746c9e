"""CMS155 weight assessment and counseling, children and adolescents (three groups): generated cases."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, condition, encounter, patient, procedure, quantity_obs
from .cases import case

M = "CMS155"


def child(birth: str = "2015-05-01", cpt: str = "99393") -> list[dict[str, Any]]:
    return [patient(birth=birth), encounter(cpt=cpt)]


def vitals(*, bmi: bool = True, height: bool = True, weight: bool = True, **kw: Any) -> list[dict[str, Any]]:
    kw.setdefault("category", "vital-signs")
    out = []
    if bmi:
        out.append(quantity_obs("bmi", "39156-5", 17.2, "kg/m2", **kw))
    if height:
        out.append(quantity_obs("ht", "8302-2", 132, "cm", **kw))
    if weight:
        out.append(quantity_obs("wt", "29463-7", 30, "kg", **kw))
    return out


def nutrition(when: str = "2025-03-04T09:20:00Z", **kw: Any) -> dict[str, Any]:
    return procedure("n", "97802", when, system=CPT, **kw)


def activity(when: str = "2025-03-04T09:25:00Z", **kw: Any) -> dict[str, Any]:
    return procedure("a", "103736005", when, system=SNOMED, **kw)


case(
    "cms155-all-three",
    M,
    "BMI, height, weight and both counselings: all three numerators",
    [*child(), *vitals(), nutrition(), activity()],
)
case(
    "cms155-no-height", M, "BMI and weight but no height: not numerator 1", [*child(), *vitals(height=False)]
)
case("cms155-no-bmi", M, "height and weight without a BMI: not numerator 1", [*child(), *vitals(bmi=False)])
case("cms155-nutrition-only", M, "nutrition counseling only: numerator 2", [*child(), nutrition()])
case("cms155-activity-only", M, "physical activity counseling only: numerator 3", [*child(), activity()])
case(
    "cms155-counseling-not-done",
    M,
    "nutrition counseling with status not-done: not performed",
    [*child(), nutrition(status="not-done")],
)
case(
    "cms155-vitals-last-year",
    M,
    "BMI, height and weight in December of the year before: not in the period",
    [*child(), *vitals(when="2024-12-10T09:00:00Z", eid=None)],
)
case(
    "cms155-preliminary-bmi",
    M,
    "a preliminary BMI: not final, numerator 1 not met",
    [
        *child(),
        *vitals(bmi=False),
        quantity_obs("bmi", "39156-5", 17.2, "kg/m2", status="preliminary", category="vital-signs"),
    ],
)
case("cms155-age-3", M, "3 at the end of the period: initial population, stratum 3-11", child("2022-12-31"))
case("cms155-age-2", M, "2 at the end of the period: not in the initial population", child("2023-01-01"))
case("cms155-age-17", M, "17 at the end of the period: stratum 12-17", [*child("2008-01-01"), nutrition()])
case("cms155-age-18", M, "18 at the end of the period: not in the initial population", child("2007-12-31"))
case("cms155-office-visit", M, "an office visit (99213) qualifies", child(cpt="99213"))
case(
    "cms155-pregnant",
    M,
    "pregnancy diagnosis overlapping the period: denominator exclusion in every group",
    [*child("2009-05-01"), condition("preg", "O09.90", system=ICD10, onset="2025-02-01")],
)
case(
    "cms155-hospice",
    M,
    "hospice encounter in the period: denominator exclusion",
    [*child(), encounter("h", "2025-06-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
