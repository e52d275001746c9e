"""CMS951 kidney health evaluation: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, condition, encounter, patient, quantity_obs
from .cases import case

M = "CMS951"


def diabetic(birth: str = "1965-05-01", *, status: str = "active", **kw: Any) -> list[dict[str, Any]]:
    """Active type 2 diabetes since 2018 and an office visit on 4 March 2025."""
    return [
        patient(birth=birth),
        condition("dm", "E11.9", onset="2018-01-01", status=status, **kw),
        encounter(),
    ]


def egfr(when: str = "2025-04-01T08:00:00Z", value: float | None = 72, **kw: Any) -> dict[str, Any]:
    return quantity_obs("egfr", "48642-3", value, "mL/min/{1.73_m2}", when, eid=None, **kw)


def uacr(when: str = "2025-04-01T08:00:00Z", value: float | None = 12, **kw: Any) -> dict[str, Any]:
    return quantity_obs("uacr", "13705-9", value, "mg/g", when, eid=None, **kw)


case(
    "cms951-both-tests",
    M,
    "eGFR and uACR with results in the period: numerator",
    [*diabetic(), egfr(), uacr()],
)
case("cms951-egfr-only", M, "eGFR without uACR: not met", [*diabetic(), egfr()])
case("cms951-uacr-only", M, "uACR without eGFR: not met", [*diabetic(), uacr()])
case(
    "cms951-uacr-last-year",
    M,
    "uACR in December 2024: outside the period, not met",
    [*diabetic(), egfr(), uacr("2024-12-20T08:00:00Z")],
)
case(
    "cms951-egfr-no-value",
    M,
    "eGFR without a value (dataAbsentReason): not a result",
    [*diabetic(), egfr(value=None, absent=True), uacr()],
)
case(
    "cms951-egfr-preliminary",
    M,
    "eGFR with status preliminary: not counted",
    [*diabetic(), egfr(status="preliminary"), uacr()],
)
case("cms951-age-85", M, "85 at the start of the period: initial population", diabetic("1939-06-01"))
case(
    "cms951-age-86", M, "86 at the start of the period: not in the initial population", diabetic("1938-12-31")
)
case("cms951-age-18", M, "18 at the start of the period: initial population", diabetic("2007-01-01"))
case(
    "cms951-diabetes-recurrence",
    M,
    "diabetes with clinicalStatus recurrence: the CQL asks for 'active' only",
    diabetic(status="recurrence"),
)
case(
    "cms951-diabetes-resolved-2024",
    M,
    "diabetes resolved in 2024: does not overlap the period",
    diabetic(status="resolved", abatement="2024-06-01"),
)
case(
    "cms951-no-visit",
    M,
    "diabetes but no outpatient visit: not in the initial population",
    diabetic()[:2],
)
case(
    "cms951-esrd",
    M,
    "active end-stage renal disease: denominator exclusion",
    [*diabetic(), condition("esrd", "N18.6", onset="2023-01-01")],
)
case(
    "cms951-ckd5-inactive",
    M,
    "CKD stage 5 with clinicalStatus inactive and no abatement: not active, no exclusion",
    [*diabetic(), condition("ckd5", "N18.5", onset="2024-01-01", status="inactive")],
)
case(
    "cms951-hospice",
    M,
    "hospice encounter in the period: denominator exclusion",
    [*diabetic(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
case(
    "cms951-palliative-diagnosis",
    M,
    "palliative care encounter (Z51.5 diagnosis) in the period: denominator exclusion",
    [*diabetic(), condition("pal", "Z51.5", system=ICD10, onset="2025-05-01")],
)
