"""Care gaps as a DEQM Gaps in Care Bundle (one per patient with an open gap), and ``gaps.csv`` from them.

The Bundle follows the US-realm DEQM profiles (``gaps-bundle-deqm``, ``gaps-composition-deqm``,
``gaps-detectedissue-deqm``): a document Bundle with an identifier and a timestamp; the Composition first
(LOINC 96315-7 gaps in care report, the patient as subject, date, author, title), one section per measure
whose focus is the patient's individual MeasureReport (``indv-measurereport-deqm``, held in the Bundle) and
whose entries are the measure's DetectedIssues: code CAREGAP, the gapStatus modifier extension (open-gap or
closed-gap), the patient, and the MeasureReport as evidence. Entries are addressed by ``urn:uuid`` full URLs
derived from the resources' business keys, so the same gaps give the same bytes.

What a care coordinator reads (the need, what would close it, by when, the group and the episode) is in
DetectedIssue.detail and in an extension of ours (``CARE_GAP_EXTENSION``); ``gaps.csv`` is those, one row per
DetectedIssue of every Bundle written, read back from ``Bundle.ndjson`` once the run's files are complete.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from ..findings import MeasureResult
from ..measures.gaps import OPEN, CareGap
from ..rules.measure_schema import MeasureDef
from .claim import EmitDefaults, validate
from .ids import GAPS_BUNDLE_IDENTIFIER_SYSTEM, TAG_CODE, TAG_SYSTEM, _digest, gaps_bundle_key, resource_id
from .measurereport import DEQM, build_individual_report

BUNDLE_PROFILE = f"{DEQM}/gaps-bundle-deqm"
COMPOSITION_PROFILE = f"{DEQM}/gaps-composition-deqm"
DETECTED_ISSUE_PROFILE = f"{DEQM}/gaps-detectedissue-deqm"
GAP_STATUS_EXTENSION = f"{DEQM}/extension-gapStatus"
GAP_STATUS_SYSTEM = "http://hl7.org/fhir/us/davinci-deqm/CodeSystem/gaps-status"
GAP_STATUS_DISPLAY = {"open-gap": "Open Gap", "closed-gap": "Closed Gap"}
CARE_GAP_EXTENSION = "urn:fhir-cat2:care-gap"
"""Ours: the gap's measure, group, need, what would close it and by when (sub-extensions), for gaps.csv."""
CSV_COLUMNS = ("patient", "measure", "group", "episode", "status", "gap", "what would close it", "by when")


def _full_url(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:fhir-cat2:{kind}/{key}')}"


def _timestamp(report_date: str) -> str:
    """Bundle.timestamp is an instant: a report date without a time is the start of that day, UTC."""
    return f"{report_date}T00:00:00Z" if len(report_date) == 10 else report_date


def _detected_issue(
    gap: CareGap,
    measure: MeasureDef,
    patient_id: str,
    key: str,
    report_url: str,
    report_date: str,
) -> dict[str, Any]:
    sub: list[dict[str, Any]] = [
        {"url": "measure", "valueString": measure.id},
        {"url": "group", "valueString": gap.group_id},
        {"url": "need", "valueString": gap.need},
    ]
    if gap.close:
        sub.append({"url": "close", "valueString": gap.close})
    sub.append({"url": "by", "valueDate": gap.by.isoformat()})
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": resource_id(key),
        "meta": {"profile": [DETECTED_ISSUE_PROFILE], "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "extension": [{"url": CARE_GAP_EXTENSION, "extension": sub}],
        "modifierExtension": [
            {
                "url": GAP_STATUS_EXTENSION,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": GAP_STATUS_SYSTEM,
                            "code": gap.status,
                            "display": GAP_STATUS_DISPLAY[gap.status],
                        }
                    ]
                },
            }
        ],
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "CAREGAP",
                    "display": "Care Gaps",
                }
            ]
        },
        "patient": {"reference": f"Patient/{patient_id}"},
        "identifiedDateTime": report_date,
        "evidence": [{"detail": [{"reference": report_url}]}],
        "detail": f"{measure.id}: {gap.close if gap.close else 'met: ' + gap.need}",
    }
    if gap.episode is not None:
        issue["implicated"] = [{"reference": gap.episode}]
    return issue


def build_gaps_bundle(
    patient_id: str,
    measures: Iterable[tuple[MeasureDef, MeasureResult, list[CareGap]]],
    *,
    period: tuple[date, date],
    report_date: str,
    defaults: EmitDefaults,
    used: Counter[str],
) -> dict[str, Any] | None:
    """One patient's Gaps in Care Bundle (validated), or None when no gap of theirs is open.

    ``measures``: per measure with a MeasureReport (url set), its result and gaps, in the run's order; each
    measure with gaps gets a section, its individual MeasureReport, and one DetectedIssue per gap (open and
    closed: the report shows both)."""
    reported = [(m, r, gaps) for m, r, gaps in measures if gaps and m.url is not None]
    if not any(gap.status == OPEN for _, _, gaps in reported for gap in gaps):
        return None
    year = period[0].year
    key = gaps_bundle_key(patient_id, year)
    sections: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for measure, result, gaps in reported:
        assert measure.url is not None
        report = build_individual_report(
            measure, result, period=period, report_date=report_date, defaults=defaults, used=used
        )
        report_url = _full_url("MeasureReport", report["identifier"][0]["value"])
        entries.append({"fullUrl": report_url, "resource": report})
        issue_urls = []
        for gap in gaps:
            issue_key = _digest(
                "gaps-issue", patient_id, measure.url, gap.group_id, gap.episode or "", str(year)
            )
            issue_url = _full_url("DetectedIssue", issue_key)
            issue = _detected_issue(gap, measure, patient_id, issue_key, report_url, report_date)
            entries.append({"fullUrl": issue_url, "resource": issue})
            issue_urls.append({"reference": issue_url})
        sections.append({"title": measure.title, "focus": {"reference": report_url}, "entry": issue_urls})
    composition_key = _digest("gaps-composition", key)
    composition = {
        "resourceType": "Composition",
        "id": resource_id(composition_key),
        "meta": {"profile": [COMPOSITION_PROFILE], "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "status": "final",
        "type": {
            "coding": [{"system": "http://loinc.org", "code": "96315-7", "display": "Gaps in care report"}]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": report_date,
        "author": [defaults.use("reporter", used)],
        "title": f"Gaps in care report {year}",
        "section": sections,
    }
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": resource_id(key),
        "meta": {"profile": [BUNDLE_PROFILE], "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": {"system": GAPS_BUNDLE_IDENTIFIER_SYSTEM, "value": key},
        "type": "document",
        "timestamp": _timestamp(report_date),
        "entry": [{"fullUrl": _full_url("Composition", composition_key), "resource": composition}, *entries],
    }
    validate(Bundle, bundle)
    return bundle


# ---------------------------------------------------------------------------------------------- gaps.csv


def gap_rows(bundle: dict[str, Any]) -> list[tuple[str, ...]]:
    """The rows of ``gaps.csv`` (``CSV_COLUMNS``) of one Gaps in Care Bundle: one per DetectedIssue, sorted
    by measure, group and episode."""
    rows: list[tuple[str, ...]] = []
    for entry in bundle.get("entry", []):
        issue = entry["resource"]
        if issue["resourceType"] != "DetectedIssue":
            continue
        fields: dict[str, str] = {}
        for extension in issue.get("extension", []):
            if extension["url"] == CARE_GAP_EXTENSION:
                fields = {
                    e["url"]: e.get("valueString", e.get("valueDate", "")) for e in extension["extension"]
                }
        status = issue["modifierExtension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        rows.append(
            (
                issue["patient"]["reference"].removeprefix("Patient/"),
                fields.get("measure", ""),
                fields.get("group", ""),
                (issue.get("implicated") or [{}])[0].get("reference", ""),
                status,
                fields.get("need", ""),
                fields.get("close", ""),
                fields.get("by", "") if status == OPEN else "",
            )
        )
    return sorted(rows, key=lambda row: (row[1], row[2], row[3]))
