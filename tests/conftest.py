"""Shared test helpers: tiny FHIR resource builders and an in-memory run of the pipeline."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.pipeline import Pipeline, PatientOutcome, QuarantineEntry, RunOptions
from fhir_cat2.rules.loader import RuleSet, load_rules
from fhir_cat2.sources.files import InputItem
from fhir_cat2.sources.records import Src
from fhir_cat2.sources.slim import plain_resolver

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FHIR_CAT2_SHARED", ROOT.parent / "shared"))

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test cleanly when the reference material is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material not available: {path}")
    return path


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    return load_rules()


# ------------------------------------------------------------------------------------------- builders


def patient(pid: str = "p1", birth: str = "1960-01-01", gender: str = "female") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def encounter(
    eid: str = "e1",
    start: str = "2025-03-04T09:00:00Z",
    *,
    pid: str = "p1",
    end: str | None = None,
    status: str = "finished",
    klass: str = "AMB",
    cpt: str = "99213",
    diagnoses: list[str] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "type": [{"coding": [{"system": CPT, "code": cpt}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start, "end": end or start},
    }
    if diagnoses:
        resource["diagnosis"] = [{"condition": {"reference": f"Condition/{d}"}} for d in diagnoses]
    return resource


def condition(cid: str, code: str, *, pid: str = "p1", onset: str = "2020-01-01", status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {"coding": [{"code": status}]},
        "code": {"coding": [{"system": ICD10, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset,
    }


def _obs(oid: str, code: str, when: str | None, *, pid: str, eid: str | None, status: str, category: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if when is not None:
        resource["effectiveDateTime"] = when
    if category:
        resource["category"] = [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}
        ]
    if eid:
        resource["encounter"] = {"reference": f"Encounter/{eid}"}
    return resource


def bp_panel(
    oid: str,
    systolic: float | None,
    diastolic: float | None,
    when: str = "2025-03-04T09:10:00Z",
    *,
    pid: str = "p1",
    eid: str | None = "e1",
    status: str = "final",
    code: str = "85354-9",
    unit: str = "mm[Hg]",
    category: str | None = "vital-signs",
) -> dict[str, Any]:
    resource = _obs(oid, code, when, pid=pid, eid=eid, status=status, category=category)
    resource["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": c}]}, "valueQuantity": {"value": v, "unit": unit, "code": unit}}
        for c, v in (("8480-6", systolic), ("8462-4", diastolic))
        if v is not None
    ]
    return resource


def quantity_obs(
    oid: str,
    code: str,
    value: float | None,
    unit: str | None,
    when: str | None = "2025-03-04T09:10:00Z",
    *,
    pid: str = "p1",
    eid: str | None = "e1",
    status: str = "final",
    category: str | None = "laboratory",
    absent: bool = False,
    comparator: str | None = None,
) -> dict[str, Any]:
    resource = _obs(oid, code, when, pid=pid, eid=eid, status=status, category=category)
    if absent:
        resource["dataAbsentReason"] = {"coding": [{"code": "not-performed"}]}
    elif value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity.update(unit=unit, code=unit)
        if comparator:
            quantity["comparator"] = comparator
        resource["valueQuantity"] = quantity
    return resource


def a1c(oid: str, value: float | None, when: str = "2025-03-04T08:00:00Z", *, unit: str | None = "%", **kw: Any) -> dict[str, Any]:
    kw.setdefault("category", "laboratory")
    return quantity_obs(oid, kw.pop("code", "4548-4"), value, unit, when, **kw)


# ------------------------------------------------------------------------------------------- running


@dataclass
class MemorySink:
    resources: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[QuarantineEntry] = field(default_factory=list)

    def write(self, resource: dict[str, Any]) -> None:
        self.resources.append(resource)

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.quarantined.append(entry)

    def of(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == resource_type]


@dataclass
class Run:
    sink: MemorySink
    pipeline: Pipeline
    outcomes: list[PatientOutcome]

    @property
    def claims(self) -> list[dict[str, Any]]:
        return self.sink.of("Claim")

    @property
    def reports(self) -> list[dict[str, Any]]:
        return self.sink.of("MeasureReport")

    def codes(self, encounter_id: str | None = None) -> list[str]:
        """Codes (with -modifiers) earned, optionally only on one encounter, in rule order."""
        out = []
        for outcome in self.outcomes:
            for code in outcome.codes:
                if encounter_id is None or code.encounter_ref == f"Encounter/{encounter_id}":
                    out.append(code.display_code)
        return out

    def population(self, measure: str, pid: str = "p1") -> dict[str, bool]:
        for outcome in self.outcomes:
            if outcome.ctx.patient_id == pid:
                result = outcome.measure_results[measure]
                return {p.code: p.member for p in result.groups[0].populations}
        raise AssertionError(f"no outcome for patient {pid}")


def run_resources(
    resources: list[dict[str, Any]],
    ruleset: RuleSet,
    *,
    period: int = 2025,
    program: str = "hedis",
    budget: int | None = None,
) -> Run:
    """Ingest resources (as loose inputs), evaluate and emit everything into memory."""
    sink = MemorySink()
    options = RunOptions(program=program, period_year=period)
    kwargs = {} if budget is None else {"budget": budget}
    pipeline = Pipeline(ruleset, options, MemorySink(), **kwargs)
    items = []
    for index, resource in enumerate(resources):
        items.append(InputItem(resource, Src("test", f"item[{index}]"), plain_resolver, resource.get("id", "")))
    pipeline.ingest(items)
    outcomes = list(pipeline.outcomes())
    pipeline.close()
    # Emit too, through a second pipeline so outcomes stay inspectable.
    emit = Pipeline(ruleset, options, sink, **kwargs)
    emit.ingest(items)
    emit.run()
    return Run(sink, emit, outcomes)
