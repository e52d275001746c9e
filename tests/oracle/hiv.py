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


NEGATIVE = "260385009"  # SNOMED Negative
CHLAMYDIA = "21613-5"  # LOINC, in Chlamydia Screening 2.16.840.1.113883.3.464.1003.110.12.1052
GONORRHEA = "24111-7"  # LOINC, in Gonorrhea Screening 2.16.840.1.113762.1.4.1258.1
SYPHILIS = "20507-0"  # LOINC, in Syphilis Tests 2.16.840.1.113762.1.4.1166.117
CT_NG = "44807-6"  # LOINC, in both Chlamydia Screening and Gonorrhea Screening


def sti_test(
    oid: str,
    code: str,
    when: str = "2025-05-20T10:00:00Z",
    *,
    status: str = "final",
    result: str | None = NEGATIVE,
) -> dict[str, Any]:
    """A laboratory STI test with a coded result (``result=None``: no value, data absent)."""
    resource = coded_obs(oid, code, when, category="laboratory", value_code=result, status=status)
    if result is None:
        resource["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "not-performed",
                }
            ]
        }
    return resource


def sti_panel(when: str = "2025-05-20T10:00:00Z") -> list[dict[str, Any]]:
    """Chlamydia, gonorrhea and syphilis tests, each negative, on one day."""
    return [
        sti_test("ct", CHLAMYDIA, when),
        sti_test("ng", GONORRHEA, when),
        sti_test("syph", SYPHILIS, when),
    ]
