"""Deterministic ids and business identifiers for what we write: derived from content, never random."""

from __future__ import annotations

import hashlib

CLAIM_IDENTIFIER_SYSTEM = "urn:fhir-cat2:claim"
MEASURE_REPORT_IDENTIFIER_SYSTEM = "urn:fhir-cat2:measure-report"
GAPS_BUNDLE_IDENTIFIER_SYSTEM = "urn:fhir-cat2:gaps-bundle"
TAG_SYSTEM = "urn:fhir-cat2"
TAG_CODE = "quality-data"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def claim_key(patient_id: str, encounter_ref: str, program: str, year: int) -> str:
    """Business identifier value of the quality-data Claim of one encounter, program and period."""
    return _digest("claim", patient_id, encounter_ref, program, str(year))


def measure_report_key(patient_id: str, measure_url: str, year: int) -> str:
    """Business identifier value of one patient's individual MeasureReport for a measure and period."""
    return _digest("measure-report", patient_id, measure_url, str(year))


def gaps_bundle_key(patient_id: str, year: int) -> str:
    """Business identifier value of one patient's Gaps in Care Bundle for a period."""
    return _digest("gaps-bundle", patient_id, str(year))


def summary_report_key(measure_url: str, year: int, scope: str) -> str:
    return _digest("summary-report", measure_url, str(year), scope)


def resource_id(key: str) -> str:
    """A FHIR id (<= 64 chars of [A-Za-z0-9-.]) for a business key."""
    return f"cat2-{key[:40]}"
