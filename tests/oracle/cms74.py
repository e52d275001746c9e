"""CMS74 primary caries prevention offered by dentists: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, SNOMED, encounter, patient, procedure
from .cases import case

M = "CMS74"
CDT = "http://www.ada.org/cdt"
SPRING, AUTUMN = "2025-03-04T09:30:00Z", "2025-09-10T14:00:00Z"


def child(birth: str = "2017-05-01", **kw: Any) -> list[dict[str, Any]]:
    """A child (7 at the start of the period) with a periodic oral evaluation (CDT D0120) on 4 March 2025."""
    kw.setdefault("cpt", "D0120")
    kw.setdefault("system", CDT)
    return [patient(birth=birth), encounter("e1", **kw)]


def varnish(rid: str, when: str, **kw: Any) -> dict[str, Any]:
    """Fluoride varnish (CDT D1206), completed unless said otherwise."""
    kw.setdefault("system", CDT)
    return procedure(rid, kw.pop("code", "D1206"), when, **kw)


def twice() -> list[dict[str, Any]]:
    return [varnish("fv1", SPRING), varnish("fv2", AUTUMN)]


case("cms74-two-days", M, "fluoride varnish in March and September: numerator", [*child(), *twice()])
case("cms74-once", M, "fluoride varnish once: denominator only", [*child(), varnish("fv1", SPRING)])
case(
    "cms74-twice-same-day",
    M,
    "two varnish applications on the same day: one day, not in the numerator",
    [*child(), varnish("fv1", SPRING), varnish("fv2", "2025-03-04T15:00:00Z")],
)
case(
    "cms74-first-in-2024",
    M,
    "varnish on 31 December 2024 and in June 2025: one in the period, not in the numerator",
    [*child(), varnish("fv1", "2024-12-31T10:00:00Z"), varnish("fv2", "2025-06-02T10:00:00Z")],
)
case(
    "cms74-snomed-and-cdt",
    M,
    "topical fluoride varnish (SNOMED 234723000) in March, CDT D1206 in September: numerator",
    [*child(), varnish("fv1", SPRING, code="234723000", system=SNOMED), varnish("fv2", AUTUMN)],
)
case(
    "cms74-second-in-progress",
    M,
    "the second application is in progress: not completed, not in the numerator",
    [*child(), varnish("fv1", SPRING), varnish("fv2", AUTUMN, status="in-progress")],
)
case(
    "cms74-second-ends-2026",
    M,
    "the second application runs from 31 December 2025 into 2026: ends after the period, not counted",
    [
        *child(),
        varnish("fv1", SPRING),
        varnish("fv2", "2025-12-31T20:00:00Z", end="2026-01-01T02:00:00Z"),
    ],
)
case(
    "cms74-first-starts-2024",
    M,
    "the first application runs from 31 December 2024 into 2025: ends in the period, numerator",
    [
        *child(),
        varnish("fv1", "2024-12-31T20:00:00Z", end="2025-01-01T02:00:00Z"),
        varnish("fv2", AUTUMN),
    ],
)
case(
    "cms74-age-1", M, "1 on the first day of the period: initial population, stratum 1-5", child("2024-01-01")
)
case("cms74-age-0", M, "0 at the start of the period: not in the initial population", child("2024-01-02"))
case(
    "cms74-age-20", M, "20 at the start of the period: initial population, stratum 13-20", child("2004-01-02")
)
case("cms74-age-21", M, "21 at the start of the period: not in the initial population", child("2004-01-01"))
case(
    "cms74-office-visit-only",
    M,
    "only a medical office visit (CPT 99213): not in the initial population",
    [*child(cpt="99213", system=CPT), *twice()],
)
case(
    "cms74-hospice",
    M,
    "hospice encounter in the period: denominator exclusion",
    [*child(), *twice(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
