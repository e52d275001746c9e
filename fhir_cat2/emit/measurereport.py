"""MeasureReport emitter: DEQM individual reports (one per patient in an initial population) and summary
reports.

Individual reports follow the US-realm DEQM ``indv-measurereport-deqm`` profile (domain.md §2.2): status,
type individual, measure canonical with ``|version``, subject, date, reporter, period, our own
improvementNotation, groups whose ids and population ids equal the published Measure's, a count for every
population, measureScore, evaluatedResource tagged with the populations it was evidence for, and the
measureScoring / calculatedDate extensions. Summary reports (``summary-measurereport-deqm``) add the counts of
every patient and the proportion score numerator / (denominator - exclusions - exceptions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir.resources.R4B.measurereport import MeasureReport

from ..contexts import PatientContext
from ..findings import GroupResult, MeasureResult
from ..rules.measure_schema import MeasureDef
from .claim import EmitDefaults, validate
from .ids import (
    MEASURE_REPORT_IDENTIFIER_SYSTEM,
    TAG_CODE,
    TAG_SYSTEM,
    measure_report_key,
    resource_id,
    summary_report_key,
)

DEQM = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition"
INDIVIDUAL_PROFILE = f"{DEQM}/indv-measurereport-deqm"
SUMMARY_PROFILE = f"{DEQM}/summary-measurereport-deqm"
MEASURE_SCORING_EXTENSION = f"{DEQM}/extension-measureScoring"
CALCULATED_DATE_EXTENSION = f"{DEQM}/extension-calculatedDate"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
SCORING_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-scoring"
POPULATION_DISPLAY = {
    "initial-population": "Initial Population",
    "denominator": "Denominator",
    "denominator-exclusion": "Denominator Exclusion",
    "denominator-exception": "Denominator Exception",
    "numerator": "Numerator",
    "numerator-exclusion": "Numerator Exclusion",
}
IMPROVEMENT_DISPLAY = {
    "increase": "Increased score indicates improvement",
    "decrease": "Decreased score indicates improvement",
}


def measure_canonical(measure: MeasureDef) -> str:
    return f"{measure.url}|{measure.version}"


def proportion_score(counts: dict[str, int]) -> float | None:
    """numerator / (denominator - exclusions - exceptions); None when nothing is left to score."""
    scored = (
        counts.get("denominator", 0)
        - counts.get("denominator-exclusion", 0)
        - counts.get("denominator-exception", 0)
    )
    if scored <= 0:
        return None
    return round(min(max(counts.get("numerator", 0) / scored, 0.0), 1.0), 6)


def _population_entry(code: str, population_id: str, count: int) -> dict[str, Any]:
    return {
        "id": population_id,
        "code": {
            "coding": [{"system": POPULATION_SYSTEM, "code": code, "display": POPULATION_DISPLAY[code]}]
        },
        "count": count,
    }


def _common(
    measure: MeasureDef,
    *,
    period: tuple[date, date],
    report_date: str,
    defaults: EmitDefaults,
    used: Counter[str],
) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": MEASURE_SCORING_EXTENSION,
                "valueCodeableConcept": {"coding": [{"system": SCORING_SYSTEM, "code": measure.scoring}]},
            }
        ],
        "status": "complete",
        "measure": measure_canonical(measure),
        "date": report_date,
        "reporter": defaults.use("reporter", used),
        "period": {"start": period[0].isoformat(), "end": period[1].isoformat()},
        "improvementNotation": {
            "coding": [
                {
                    "system": IMPROVEMENT_SYSTEM,
                    "code": measure.improvement_notation,
                    "display": IMPROVEMENT_DISPLAY[measure.improvement_notation],
                }
            ]
        },
    }


def _group(group: GroupResult, report_date: str) -> dict[str, Any]:
    counts = {p.code: p.tally for p in group.populations}
    entry: dict[str, Any] = {
        "id": group.id,
        "extension": [{"url": CALCULATED_DATE_EXTENSION, "valueDateTime": report_date}],
        "population": [_population_entry(p.code, p.id, p.tally) for p in group.populations],
    }
    score = proportion_score(counts)
    if score is not None:
        entry["measureScore"] = {"value": score}
    if group.strata:
        ids = [(p.code, p.id) for p in group.populations]
        entry["stratifier"] = [_stratifier(stratum.id, ids, stratum.counts) for stratum in group.strata]
    return entry


def _stratifier(
    stratifier_id: str, populations: list[tuple[str, str]], counts: dict[str, int]
) -> dict[str, Any]:
    """A group's stratifier with its one stratum: the populations counted within it (as fqm-execution
    writes them: the stratifier keeps the Measure's id; the stratum has no value, the stratifier being a
    boolean expression)."""
    stratum: dict[str, Any] = {
        "population": [
            _population_entry(code, population_id, counts.get(code, 0)) for code, population_id in populations
        ]
    }
    score = proportion_score(counts)
    if score is not None:
        stratum["measureScore"] = {"value": score}
    return {"id": stratifier_id, "stratum": [stratum]}


def tally_counts(group: GroupResult) -> dict[str, int]:
    """A group's counts as summary tallies add them up: per population code, and per stratifier
    ('<stratifier id>|<code>')."""
    counts = {p.code: p.tally for p in group.populations}
    for stratum in group.strata:
        for code, count in stratum.counts.items():
            counts[f"{stratum.id}|{code}"] = count
    return counts


ATTRIBUTION_PREFIX = "@"
"""Tally keys '@<dimension>=<reference>|<population code>': the patient's counts again, under the clinician,
organization and location of the encounter the measure is attributed to (aggregates: the HTML report's
strata; summary MeasureReports ignore them)."""


def attribute(tallies: list[dict[str, int]], ctx: PatientContext, result: MeasureResult) -> None:
    """Add the attribution keys to a patient's tallies: the latest encounter that qualified the patient
    (its first participant individual, serviceProvider and first location), where the data records them."""
    latest = None
    for encounter in ctx.encounters:
        if (
            encounter.ref in result.qualifying_encounters
            and encounter.when is not None
            and (latest is None or latest.when is None or encounter.when.end_day >= latest.when.end_day)
        ):
            latest = encounter
    if latest is None:
        return
    practitioner = latest.provider_ref
    if practitioner is not None and practitioner == latest.service_provider_ref:
        practitioner = None  # no participant individual: provider_ref fell back to the organization
    dimensions = [
        (name, ref)
        for name, ref in (
            ("practitioner", practitioner),
            ("organization", latest.service_provider_ref),
            ("location", latest.location_ref),
        )
        if ref
    ]
    for counts in tallies:
        base = [(code, count) for code, count in counts.items() if "|" not in code]
        for name, ref in dimensions:
            for code, count in base:
                counts[f"{ATTRIBUTION_PREFIX}{name}={ref}|{code}"] = count


def build_individual_report(
    measure: MeasureDef,
    result: MeasureResult,
    *,
    period: tuple[date, date],
    report_date: str,
    defaults: EmitDefaults,
    used: Counter[str],
) -> dict[str, Any]:
    assert measure.url is not None, "claims-only measures have no MeasureReport"
    key = measure_report_key(result.patient_id, measure.url, period[0].year)
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": resource_id(key),
        "meta": {"profile": [INDIVIDUAL_PROFILE], "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": MEASURE_REPORT_IDENTIFIER_SYSTEM, "value": key}],
        **_common(measure, period=period, report_date=report_date, defaults=defaults, used=used),
        "type": "individual",
        "subject": {"reference": f"Patient/{result.patient_id}"},
        "group": [_group(group, report_date) for group in result.groups],
    }
    evaluated = _evaluated_resources(result)
    if evaluated:
        report["evaluatedResource"] = evaluated
    validate(MeasureReport, report)
    return report


def _evaluated_resources(result: MeasureResult) -> list[dict[str, Any]]:
    """Every resource the populations' trails used as evidence (the 'smoking gun' of DEQM), sorted.

    Which population each one decided is in ``fhir-cat2 explain``; per-resource populationReference
    extensions would double the cost of validating every report, so they are left out.
    """
    return [{"reference": ref} for ref in result.evaluated]


@dataclass
class SummaryTally:
    """Population counts of one measure, added up over patients (or episodes), per group."""

    measure: MeasureDef
    counts: list[dict[str, int]] = field(default_factory=list)
    patients: int = 0

    def merge(self, counts: list[dict[str, int]], patients: int) -> None:
        """Add the counts and patients of another tally of the same measure (from a worker process)."""
        if not self.counts:
            self.counts = [dict(group) for group in counts]
        else:
            for mine, theirs in zip(self.counts, counts, strict=True):
                for code, count in theirs.items():
                    mine[code] = mine.get(code, 0) + count
        self.patients += patients

    def add(self, result: MeasureResult) -> None:
        self.merge([tally_counts(group) for group in result.groups], 1)


def build_summary_report(
    tally: SummaryTally,
    *,
    period: tuple[date, date],
    report_date: str,
    defaults: EmitDefaults,
    used: Counter[str],
) -> dict[str, Any]:
    measure = tally.measure
    assert measure.url is not None
    key = summary_report_key(measure.url, period[0].year, "all")
    groups = []
    for index, group_def in enumerate(measure.groups):
        counts = tally.counts[index] if index < len(tally.counts) else {}
        entry: dict[str, Any] = {
            "id": group_def.id,
            "extension": [{"url": CALCULATED_DATE_EXTENSION, "valueDateTime": report_date}],
            "population": [
                _population_entry(code, population.id, counts.get(code, 0))
                for code in POPULATION_DISPLAY
                if (population := group_def.populations.get(code)) is not None  # type: ignore[call-overload]
            ],
        }
        score = proportion_score(counts)
        if score is not None:
            entry["measureScore"] = {"value": score}
        if group_def.stratifiers:
            ids = [
                (code, population.id)
                for code in POPULATION_DISPLAY
                if (population := group_def.populations.get(code)) is not None  # type: ignore[call-overload]
            ]
            entry["stratifier"] = [
                _stratifier(
                    stratifier.id,
                    ids,
                    {code: counts.get(f"{stratifier.id}|{code}", 0) for code, _ in ids},
                )
                for stratifier in group_def.stratifiers
            ]
        groups.append(entry)
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": resource_id(key),
        "meta": {"profile": [SUMMARY_PROFILE], "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": MEASURE_REPORT_IDENTIFIER_SYSTEM, "value": key}],
        **_common(measure, period=period, report_date=report_date, defaults=defaults, used=used),
        "type": "summary",
        "group": groups,
    }
    validate(MeasureReport, report)
    return report
