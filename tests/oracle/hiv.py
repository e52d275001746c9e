"""Builders shared by the HIV measures' cases (CMS314, CMS1188, CMS1157)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, SNOMED, coded_obs, condition, quantity_obs

HIV = "B20"  # ICD-10-CM, in HIV 2.16.840.1.113883.3.464.1003.120.12.1003
VIRAL_LOAD = (
    "20447-9"  # LOINC HIV-1 RNA (viral load), in HIV Viral Load 2.16.840.1.113883.3.464.1003.120.12.1002
)
NOT_DETECTED = "260415000"
BELOW_THRESHOLD = "260988000"


def hiv(
    onset: str | None = "2019-06-01", *, status: str = "active", abatement: str | None = None
) -> dict[str, Any]:
    """An HIV diagnosis (B20) on the problem list."""
    return condition(
        "hiv",
        HIV,
        onset=onset,
        status=status,
        abatement=abatement,
        system=ICD10,
        category="problem-list-item",
    )


def viral_load(
    oid: str = "vl",
    value: float | None = 50,
    when: str = "2025-06-10T10:00:00Z",
    *,
    coded: str | None = None,
    status: str = "final",
    period_end: str | None = None,
) -> dict[str, Any]:
    """An HIV viral load result in {copies}/mL (UCUM code), or with a coded answer (``coded``)."""
    if coded is not None:
        return coded_obs(
            oid, VIRAL_LOAD, when, category="laboratory", value_code=coded, value_system=SNOMED, status=status
        )
    resource = quantity_obs(oid, VIRAL_LOAD, value, "{copies}/mL", when, eid=None, status=status)
    if period_end is not None:
        del resource["effectiveDateTime"]
        resource["effectivePeriod"] = {"start": when, "end": period_end}
    return resource
