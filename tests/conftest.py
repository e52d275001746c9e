"""Shared test helpers: tiny FHIR resource builders and an in-memory run of the pipeline."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.pipeline import PatientOutcome, Pipeline, QuarantineEntry, QuarantineKind, RunOptions
from fhir_cat2.rules.loader import RuleSet, load_rules
from fhir_cat2.sinks.base import SinkStats
from fhir_cat2.sources.files import InputItem
from fhir_cat2.sources.records import Src
from fhir_cat2.sources.values import plain_resolver

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FHIR_CAT2_SHARED", ROOT.parent / "shared"))

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition"


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
    system: str = CPT,
    discharge: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "type": [{"coding": [{"system": system, "code": cpt}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start, "end": end or start},
    }
    if discharge:
        resource["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": SNOMED, "code": discharge}]}
        }
    if diagnoses:
        resource["diagnosis"] = [{"condition": {"reference": f"Condition/{d}"}} for d in diagnoses]
    return resource


def condition(
    cid: str,
    code: str,
    *,
    pid: str = "p1",
    onset: str | None = "2020-01-01",
    status: str | None = "active",
    system: str = ICD10,
    category: str | None = None,
    abatement: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if status:
        resource["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]
        }
    if onset:
        resource["onsetDateTime"] = onset
    if abatement:
        resource["abatementDateTime"] = abatement
    if category:
        system_ = (
            "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
            if category == "health-concern"
            else CONDITION_CATEGORY
        )
        resource["category"] = [{"coding": [{"system": system_, "code": category}]}]
    return resource


def coded_obs(
    oid: str,
    code: str,
    when: str | None = "2025-03-04T09:10:00Z",
    *,
    pid: str = "p1",
    eid: str | None = None,
    status: str = "final",
    category: str | None = "survey",
    value_code: str | None = None,
    value_system: str = SNOMED,
    value: Any = None,
    value_kind: str = "quantity",
    system: str = LOINC,
    period_end: str | None = None,
) -> dict[str, Any]:
    """An Observation with a coded answer (value_code) or a number (valueQuantity, valueInteger,
    valueString)."""
    resource = _obs(oid, code, when, pid=pid, eid=eid, status=status, category=category)
    resource["code"]["coding"][0]["system"] = system
    if period_end is not None and when is not None:
        del resource["effectiveDateTime"]
        resource["effectivePeriod"] = {"start": when, "end": period_end}
    if value_code is not None:
        resource["valueCodeableConcept"] = {"coding": [{"system": value_system, "code": value_code}]}
    elif value is not None:
        if value_kind == "quantity":
            resource["valueQuantity"] = {"value": value, "unit": "{score}"}
        elif value_kind == "integer":
            resource["valueInteger"] = value
        else:
            resource["valueString"] = str(value)
    return resource


def not_done_obs(
    oid: str, code: str, reason: str, issued: str, *, pid: str = "p1", reason_system: str = SNOMED
) -> dict[str, Any]:
    """QI-Core ObservationCancelled: status cancelled, notDoneReason extension, timed by issued."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "cancelled",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "issued": issued,
        "effectiveDateTime": issued,
        "extension": [
            {
                "url": f"{QICORE}/qicore-notDoneReason",
                "valueCodeableConcept": {"coding": [{"system": reason_system, "code": reason}]},
            }
        ],
    }


def procedure(
    rid: str,
    code: str,
    when: str | None = "2025-03-04T09:20:00Z",
    *,
    pid: str = "p1",
    system: str = SNOMED,
    status: str = "completed",
    end: str | None = None,
    reason: str | None = None,
    reason_system: str = SNOMED,
    status_reason: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": rid,
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if when is not None:
        if end:
            resource["performedPeriod"] = {"start": when, "end": end}
        else:
            resource["performedDateTime"] = when
    if reason:
        resource["reasonCode"] = [{"coding": [{"system": reason_system, "code": reason}]}]
    if status_reason:
        resource["statusReason"] = {"coding": [{"system": SNOMED, "code": status_reason}]}
    return resource


def request(
    kind: str,
    rid: str,
    code: str,
    authored: str = "2025-03-04T09:25:00Z",
    *,
    pid: str = "p1",
    system: str = SNOMED,
    status: str = "active",
    intent: str = "order",
    reason: str | None = None,
    reason_system: str = SNOMED,
    do_not_perform: bool = False,
    refused: str | None = None,
    supply_days: int | None = None,
) -> dict[str, Any]:
    """A ServiceRequest, MedicationRequest or DeviceRequest (kind)."""
    element = {
        "ServiceRequest": "code",
        "MedicationRequest": "medicationCodeableConcept",
        "DeviceRequest": "codeCodeableConcept",
    }[kind]
    resource: dict[str, Any] = {
        "resourceType": kind,
        "id": rid,
        "status": status,
        "intent": intent,
        element: {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
    }
    if reason:
        resource["reasonCode"] = [{"coding": [{"system": reason_system, "code": reason}]}]
    if do_not_perform:
        if kind == "DeviceRequest":
            resource["modifierExtension"] = [{"url": f"{QICORE}/qicore-doNotPerform", "valueBoolean": True}]
        else:
            resource["doNotPerform"] = True
    if refused:
        resource["extension"] = [
            {
                "url": f"{QICORE}/qicore-doNotPerformReason",
                "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": refused}]},
            }
        ]
    if supply_days is not None:
        resource["dispenseRequest"] = {
            "expectedSupplyDuration": {"value": supply_days, "unit": "days", "code": "d"}
        }
    return resource


def immunization(
    rid: str, cvx: str, when: str, *, pid: str = "p1", status: str = "completed"
) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "id": rid,
        "status": status,
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
        "patient": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": when,
    }


def _obs(
    oid: str, code: str, when: str | None, *, pid: str, eid: str | None, status: str, category: str | None
) -> dict[str, Any]:
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
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}
                ]
            }
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
        {
            "code": {"coding": [{"system": LOINC, "code": c}]},
            "valueQuantity": {"value": v, "unit": unit, "code": unit},
        }
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


def a1c(
    oid: str, value: float | None, when: str = "2025-03-04T08:00:00Z", *, unit: str | None = "%", **kw: Any
) -> dict[str, Any]:
    kw.setdefault("category", "laboratory")
    return quantity_obs(oid, kw.pop("code", "4548-4"), value, unit, when, **kw)


# ------------------------------------------------------------------------------------------- running


@dataclass
class MemorySink:
    """A ``Sink`` (fhir_cat2.sinks.base) that keeps everything in memory."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    expected: list[tuple[str, str, str | None]] = field(default_factory=list)
    stats: SinkStats = field(default_factory=SinkStats)

    def write(self, resource: dict[str, Any]) -> None:
        self.resources.append(resource)

    def write_line(self, resource_type: str, line: bytes) -> None:
        self.write(json.loads(line))

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.quarantined.append(entry)

    def quarantine_line(self, line: bytes) -> None:
        data = json.loads(line)
        self.quarantined.append(QuarantineEntry.from_json(data, QuarantineKind.MALFORMED_RESOURCE))

    def expect(self, candidates) -> None:
        self.expected.extend(candidates)

    def close(self) -> None:
        pass

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

    def result(self, measure: str, pid: str = "p1"):
        for outcome in self.outcomes:
            if outcome.ctx.patient_id == pid:
                return outcome.measure_results[measure]
        raise AssertionError(f"no outcome for patient {pid}")

    def population(self, measure: str, pid: str = "p1", group: int = 0) -> dict[str, bool]:
        return {p.code: p.member for p in self.result(measure, pid).groups[group].populations}

    def counts(self, measure: str, pid: str = "p1", group: int = 0) -> dict[str, int]:
        """Population counts (episodes for an encounter-based measure)."""
        return {p.code: p.tally for p in self.result(measure, pid).groups[group].populations}

    def outcome(self, measure: str, pid: str = "p1", group: int = 0) -> str:
        return self.result(measure, pid).outcome(group)

    def measure_codes(self, measure: str, encounter_id: str | None = None) -> list[str]:
        out = []
        for outcome in self.outcomes:
            for code in outcome.codes:
                if code.measure == measure and (
                    encounter_id is None or code.encounter_ref == f"Encounter/{encounter_id}"
                ):
                    out.append(code.display_code)
        return out


def one_patient(folder: Path) -> Path:
    """An input folder holding one Bundle of a patient with one office visit."""
    folder.mkdir(exist_ok=True)
    (folder / "p.json").write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": patient()}, {"resource": encounter()}],
            }
        )
    )
    return folder


def run_resources(
    resources: list[dict[str, Any]],
    ruleset: RuleSet,
    *,
    period: int = 2025,
    program: str = "hedis",
    budget: int | None = None,
    report: str = "individual",
    measures: tuple[str, ...] | None = None,
    deviations: frozenset[str] = frozenset(),
    emit: frozenset[str] | None = None,
) -> Run:
    """Ingest resources (as loose inputs), evaluate and emit everything into memory (measures by the
    published logic unless ``deviations`` turns some on; the default emit kinds unless ``emit``)."""
    sink = MemorySink()
    options = RunOptions(
        program=program, period_year=period, report=report, measures=measures, deviations=deviations
    )
    if emit is not None:
        options = replace(options, emit=emit)
    kwargs = {} if budget is None else {"budget": budget}
    items = []
    for index, resource in enumerate(resources):
        items.append(
            InputItem(resource, Src("test", f"item[{index}]"), plain_resolver, resource.get("id", ""))
        )
    pipeline = Pipeline(ruleset, options, sink, **kwargs)
    pipeline.ingest(items)
    outcomes: list[PatientOutcome] = []
    pipeline.run(outcomes.append)
    return Run(sink, pipeline, outcomes)
