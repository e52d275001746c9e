"""Builders shared by the respiratory antibiotic measures' cases (CMS146 pharyngitis, CMS154 URI)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, RXNORM, SNOMED, coded_obs, condition, encounter, request

VISIT = "2025-03-04T09:00:00Z"
VISIT_END = "2025-03-04T09:30:00Z"
ANTIBIOTIC = "1013659"  # in Antibiotic Medications for Pharyngitis / URI (196.12.1001)
PHARYNGITIS = "J02.9"
TONSILLITIS = "J03.00"
URI = "J06.9"
COMORBID = "A15.0"  # Comorbid Conditions for Respiratory Conditions
COMPETING = "A00.0"  # Competing Conditions for Respiratory Conditions
STREP_TEST = "11268-0"  # Group A Streptococcus Test


def visit(eid: str = "e1", start: str = VISIT, end: str = VISIT_END, **kw: Any) -> dict[str, Any]:
    """A finished office visit (CPT 99213)."""
    return encounter(eid, start, end=end, **kw)


def antibiotic(rid: str = "abx", authored: str = "2025-03-04T09:25:00Z", **kw: Any) -> dict[str, Any]:
    return request("MedicationRequest", rid, ANTIBIOTIC, authored, system=RXNORM, **kw)


def diagnosis(cid: str, code: str, onset: str = "2025-03-04T09:05:00Z", **kw: Any) -> dict[str, Any]:
    return condition(cid, code, onset=onset, system=ICD10, **kw)


def strep_test(when: str = "2025-03-04T09:15:00Z", **kw: Any) -> dict[str, Any]:
    """A group A strep lab test with a negative result."""
    kw.setdefault("category", "laboratory")
    kw.setdefault("value_code", "260385009")
    return coded_obs("strep", STREP_TEST, when, **kw)


def hospice_visit() -> dict[str, Any]:
    return encounter(
        "hosp", "2025-05-01T09:00:00Z", end="2025-05-01T10:00:00Z", system=SNOMED, cpt="183919006"
    )
