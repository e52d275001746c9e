"""CMS122 diabetes glycemic status above 9% (inverse): generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, a1c, condition, encounter, patient
from .cases import case

M = "CMS122"


def diabetic(birth: str = "1965-05-01", *, onset: str = "2019-01-01") -> list[dict[str, Any]]:
    return [patient(birth=birth), condition("dm", "E11.9", system=ICD10, onset=onset), encounter()]


case(
    "cms122-a1c-7",
    M,
    "HbA1c 7.0% in the period: not in the (inverse) numerator",
    [*diabetic(), a1c("a", 7.0)],
)
case("cms122-a1c-9", M, "HbA1c exactly 9.0%: not above 9", [*diabetic(), a1c("a", 9.0)])
case("cms122-a1c-9-1", M, "HbA1c 9.1%: numerator", [*diabetic(), a1c("a", 9.1)])
case("cms122-no-a1c", M, "no HbA1c in the period: numerator", diabetic())
case(
    "cms122-a1c-last-year",
    M,
    "HbA1c 6.5% in December of the year before: none in the period, numerator",
    [*diabetic(), a1c("a", 6.5, "2024-12-20T08:00:00Z")],
)
case(
    "cms122-latest-decides",
    M,
    "10% in February, 7% in November: the most recent decides, not in the numerator",
    [*diabetic(), a1c("a1", 10.0, "2025-02-03T08:00:00Z"), a1c("a2", 7.0, "2025-11-03T08:00:00Z")],
)
case(
    "cms122-no-value",
    M,
    "the most recent HbA1c has no result (data absent): numerator",
    [*diabetic(), a1c("a", None, absent=True)],
)
case(
    "cms122-mmol-mol",
    M,
    "HbA1c 86 mmol/mol (10.0% NGSP, 8.6% by UCUM): the CQL compares quantities by UCUM"
    " (deviation unit-conversion)",
    [*diabetic(), a1c("a", 86, unit="mmol/mol")],
)
case(
    "cms122-gmi",
    M,
    "glucose management indicator 97506-0 of 9.5%: numerator",
    [*diabetic(), a1c("a", 9.5, code="97506-0")],
)
case(
    "cms122-no-lab-category",
    M,
    "HbA1c 7% without the laboratory category: not a performed lab test, so none (numerator)",
    [*diabetic(), a1c("a", 7.0, category=None)],
)
case(
    "cms122-mmol-mol-high",
    M,
    "HbA1c 120 mmol/mol (13.1% NGSP, 12% by UCUM): above 9% either way, numerator",
    [*diabetic(), a1c("a", 120, unit="mmol/mol")],
)
case("cms122-age-75", M, "75 at the end of the period: initial population", diabetic("1950-01-01"))
case("cms122-age-76", M, "76 at the end of the period: not in the initial population", diabetic("1949-12-31"))
case(
    "cms122-diabetes-from-2026",
    M,
    "diabetes recorded from 2026 on: does not overlap the period",
    diabetic(onset="2026-01-05"),
)
