"""CMS75 children who have dental decay or cavities: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, condition, encounter, patient
from .cases import case

M = "CMS75"
CDT = "http://www.ada.org/cdt"


def child(
    birth: str = "2017-05-01", *, when: str = "2025-03-04T09:00:00Z", **kw: Any
) -> list[dict[str, Any]]:
    """A child (7 at the start of the period) with a periodic oral evaluation (CDT D0120)."""
    kw.setdefault("cpt", "D0120")
    kw.setdefault("system", CDT)
    return [patient(birth=birth), encounter("e1", when, **kw)]


def caries(onset: str = "2025-03-04", **kw: Any) -> dict[str, Any]:
    """Dental caries on a smooth surface (ICD-10-CM K02.52), active unless said otherwise."""
    kw.setdefault("system", ICD10)
    return condition("caries", kw.pop("code", "K02.52"), onset=onset, **kw)


case("cms75-caries", M, "caries diagnosed at the evaluation: numerator", [*child(), caries()])
case("cms75-no-caries", M, "evaluated, no caries: denominator only", child())
case(
    "cms75-caries-snomed",
    M,
    "primary dental caries (SNOMED 109570002) since 2024, active: numerator",
    [*child(), caries("2024-05-01", code="109570002", system=SNOMED)],
)
case(
    "cms75-caries-resolved-2024",
    M,
    "caries from 2023, resolved in June 2024: not in the numerator",
    [*child(), caries("2023-01-10", status="resolved", abatement="2024-06-01")],
)
case(
    "cms75-caries-resolved-in-period",
    M,
    "caries from 2024, resolved in February 2025: numerator (overlaps the period)",
    [*child(), caries("2024-10-01", status="resolved", abatement="2025-02-01")],
)
case(
    "cms75-caries-inactive-no-abatement",
    M,
    "caries from 2020, clinical status inactive and no abatement: prevalence end unknown, not counted",
    [*child(), caries("2020-01-10", status="inactive")],
)
case(
    "cms75-caries-2026",
    M,
    "caries starting after the period: not in the numerator",
    [*child(), caries("2026-01-05")],
)
case(
    "cms75-age-1", M, "1 on the first day of the period: initial population", [*child("2024-01-01"), caries()]
)
case("cms75-age-0", M, "0 at the start of the period: not in the initial population", child("2024-01-02"))
case("cms75-age-20", M, "20 at the start of the period: initial population", [*child("2004-01-02"), caries()])
case("cms75-age-21", M, "21 at the start of the period: not in the initial population", child("2004-01-01"))
case(
    "cms75-office-visit-only",
    M,
    "only a medical office visit (CPT 99213), no oral evaluation: not in the initial population",
    [*child(cpt="99213", system="http://www.ama-assn.org/go/cpt"), caries()],
)
case(
    "cms75-evaluation-cancelled",
    M,
    "the oral evaluation was cancelled: not in the initial population",
    [*child(status="cancelled"), caries()],
)
case(
    "cms75-evaluation-2024",
    M,
    "oral evaluation on 31 December 2024: not in the initial population",
    [*child(when="2024-12-31T15:00:00Z"), caries()],
)
case(
    "cms75-hospice",
    M,
    "hospice encounter in the period: denominator exclusion",
    [*child(), caries(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
