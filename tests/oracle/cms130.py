"""CMS130 colorectal cancer screening: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, condition, encounter, patient, procedure, quantity_obs
from .cases import case

M = "CMS130"


def adult(birth: str = "1965-05-01") -> list[dict[str, Any]]:
    return [patient(birth=birth), encounter()]


def fobt(when: str = "2025-02-10T08:00:00Z", code: str = "2335-8", **kw: Any) -> dict[str, Any]:
    return quantity_obs("t", code, 1, "{index}", when, eid=None, **kw)


def colonoscopy(when: str) -> dict[str, Any]:
    return procedure("c", "44388", when, system=CPT)


case("cms130-fobt", M, "FOBT with a result in the period: numerator", [*adult(), fobt()])
case(
    "cms130-fobt-last-year",
    M,
    "FOBT in the previous year only: not met",
    [*adult(), fobt("2024-11-10T08:00:00Z")],
)
case(
    "cms130-fobt-no-category",
    M,
    "FOBT without the laboratory category: not a performed lab test",
    [*adult(), fobt(category=None)],
)
case(
    "cms130-sdna-2023",
    M,
    "sDNA-FIT in 2023: within 2 years before the period",
    [*adult(), fobt("2023-01-01T08:00:00Z", "77353-1")],
)
case(
    "cms130-sdna-2022",
    M,
    "sDNA-FIT on 31 Dec 2022: too old",
    [*adult(), fobt("2022-12-31T08:00:00Z", "77353-1")],
)
case(
    "cms130-colonoscopy-2016",
    M,
    "colonoscopy on 1 Jan 2016: within 9 years before",
    [*adult(), colonoscopy("2016-01-01T08:00:00Z")],
)
case(
    "cms130-colonoscopy-2015",
    M,
    "colonoscopy on 31 Dec 2015: too old",
    [*adult(), colonoscopy("2015-12-31T08:00:00Z")],
)
case("cms130-no-screening", M, "no screening: denominator only", adult())
case("cms130-age-46", M, "46 at the end of the period: initial population", adult("1979-12-31"))
case("cms130-age-45", M, "45 at the end of the period: not in the initial population", adult("1980-01-01"))
case("cms130-age-76", M, "76 at the end of the period: not in the initial population", adult("1949-12-31"))
case(
    "cms130-colon-cancer",
    M,
    "malignant neoplasm of the colon: denominator exclusion",
    [*adult(), condition("ca", "C18.0", system=ICD10, onset="2021-03-01")],
)
