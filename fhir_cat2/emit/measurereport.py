"""MeasureReport emitter: DEQM individual reports (one per patient in an initial population)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir.resources.R4B.measurereport import MeasureReport

from ..findings import MeasureResult
from ..rules.schema import MeasureDef
from .claim import EmitDefaults, validate
from .ids import MEASURE_REPORT_IDENTIFIER_SYSTEM, TAG_CODE, TAG_SYSTEM, measure_report_key, resource_id

INDIVIDUAL_PROFILE = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/indv-measurereport-deqm"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"


def measure_canonical(measure: MeasureDef) -> str:
    return f"{measure.url}|{measure.version}"


def build_individual_report(
    measure: MeasureDef,
    result: MeasureResult,
    *,
    period: tuple[date, date],
    report_date: str,
    defaults: EmitDefaults,
) -> dict[str, Any]:
    key = measure_report_key(result.patient_id, measure.url, period[0].year)
    groups = []
    for group in result.groups:
        groups.append(
            {
                "id": group.id,
                "population": [
                    {
                        "id": population.id,
                        "code": {"coding": [{"system": POPULATION_SYSTEM, "code": population.code}]},
                        "count": 1 if population.member else 0,
                    }
                    for population in group.populations
                ],
            }
        )
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": resource_id(key),
        "meta": {"profile": [INDIVIDUAL_PROFILE], "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": MEASURE_REPORT_IDENTIFIER_SYSTEM, "value": key}],
        "status": "complete",
        "type": "individual",
        "measure": measure_canonical(measure),
        "subject": {"reference": f"Patient/{result.patient_id}"},
        "date": report_date,
        "reporter": defaults.use("reporter"),
        "period": {"start": period[0].isoformat(), "end": period[1].isoformat()},
        "improvementNotation": {
            "coding": [{"system": IMPROVEMENT_SYSTEM, "code": measure.improvement_notation}]
        },
        "group": groups,
    }
    if result.evaluated:
        report["evaluatedResource"] = [{"reference": ref} for ref in result.evaluated]
    validate(MeasureReport, report)
    return report
