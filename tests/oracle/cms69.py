"""CMS69 BMI screening and follow-up plan: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, condition, encounter, patient, procedure, quantity_obs, request
from .cases import case

M = "CMS69"


def adult(birth: str = "1980-05-01") -> list[dict[str, Any]]:
    return [patient(birth=birth), encounter()]


def bmi(value: float, when: str = "2025-03-04T09:10:00Z", **kw: Any) -> dict[str, Any]:
    kw.setdefault("category", "vital-signs")
    return quantity_obs("bmi", "39156-5", value, "kg/m2", when, **kw)


case("cms69-normal", M, "BMI 22: normal, numerator", [*adult(), bmi(22)])
case("cms69-boundary-18-5", M, "BMI exactly 18.5: normal", [*adult(), bmi(18.5)])
case("cms69-boundary-25", M, "BMI exactly 25: high, no plan, not met", [*adult(), bmi(25)])
case("cms69-no-bmi", M, "no BMI: denominator only", adult())
case(
    "cms69-high-with-plan",
    M,
    "BMI 31 with dietary counseling ordered for obesity: numerator",
    [
        *adult(),
        bmi(31),
        request("ServiceRequest", "plan", "Z71.3", system=ICD10, reason="E66.9", reason_system=ICD10),
    ],
)
case(
    "cms69-high-procedure",
    M,
    "BMI 31 and a weight counseling procedure during the visit with obesity active: numerator",
    [
        *adult(),
        bmi(31),
        condition("ob", "E66.9", system=ICD10, onset="2024-01-01"),
        procedure("p", "304549008", "2025-03-04T09:20:00Z", system=SNOMED),
    ],
)
case(
    "cms69-low-with-plan",
    M,
    "BMI 17 with a nutrition referral for underweight: numerator",
    [
        *adult(),
        bmi(17),
        request("ServiceRequest", "plan", "304549008", reason="R63.6", reason_system=ICD10),
    ],
)
case(
    "cms69-normal-and-high",
    M,
    "BMI 22 in March and 27 in October without a plan: not normal for the period",
    [
        *adult(),
        bmi(22),
        encounter("e2", "2025-10-02T09:00:00Z"),
        quantity_obs(
            "bmi2", "39156-5", 27, "kg/m2", "2025-10-02T09:10:00Z", eid="e2", category="vital-signs"
        ),
    ],
)
case("cms69-age-17", M, "17 at the visit: not in the initial population", [*adult("2007-06-01"), bmi(22)])
case(
    "cms69-pregnant",
    M,
    "active pregnancy diagnosis in the period: denominator exclusion",
    [*adult(), condition("preg", "O09.90", system=ICD10, onset="2025-02-01")],
)
case(
    "cms69-virtual",
    M,
    "virtual visit only: not a qualifying encounter",
    [patient(birth="1980-05-01"), encounter(klass="VR"), bmi(22)],
)
case(
    "cms69-bmi-last-year",
    M,
    "BMI 22 in the previous December only: no BMI in the period",
    [*adult(), bmi(22, "2024-12-10T09:10:00Z", eid=None)],
)
