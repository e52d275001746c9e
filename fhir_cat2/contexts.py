"""One patient with everything documented about them: the unit every rule and measure works on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .sources.records import (
    ClaimRecord,
    ConditionRecord,
    CoverageRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    PatientRecord,
    ResourceRecord,
)


def _newer(a: ResourceRecord, b: ResourceRecord) -> ResourceRecord:
    """Of two copies of one resource (two pages, two files), the later version; ties keep the first seen."""
    key_a = (a.last_updated or "", a.version_id or "")
    key_b = (b.last_updated or "", b.version_id or "")
    return b if key_b > key_a else a


@dataclass
class PatientContext:
    patient_id: str
    patient: PatientRecord | None = None
    encounters: list[EncounterRecord] = field(default_factory=list)
    observations: list[ObservationRecord] = field(default_factory=list)
    conditions: list[ConditionRecord] = field(default_factory=list)
    events: dict[str, list[EventRecord]] = field(default_factory=dict)
    """Procedure, Immunization, MedicationRequest... by resource type."""
    coverages: list[CoverageRecord] = field(default_factory=list)
    claims: list[ClaimRecord] = field(default_factory=list)
    encounter_by_ref: dict[str, EncounterRecord] = field(default_factory=dict)
    condition_by_ref: dict[str, ConditionRecord] = field(default_factory=dict)

    @classmethod
    def build(cls, patient_id: str, records: Iterable[ResourceRecord]) -> PatientContext:
        unique: dict[str, ResourceRecord] = {}
        for record in records:
            ref = record.ref
            seen = unique.get(ref)
            unique[ref] = record if seen is None else _newer(seen, record)
        ctx = cls(patient_id)
        for ref in sorted(unique):
            record = unique[ref]
            if isinstance(record, PatientRecord):
                ctx.patient = record
            elif isinstance(record, EncounterRecord):
                ctx.encounters.append(record)
                ctx.encounter_by_ref[ref] = record
            elif isinstance(record, ObservationRecord):
                ctx.observations.append(record)
            elif isinstance(record, ConditionRecord):
                ctx.conditions.append(record)
                ctx.condition_by_ref[ref] = record
            elif isinstance(record, EventRecord):
                ctx.events.setdefault(record.resource_type, []).append(record)
            elif isinstance(record, CoverageRecord):
                ctx.coverages.append(record)
            elif isinstance(record, ClaimRecord):
                ctx.claims.append(record)
        ctx.encounters.sort(key=_encounter_order)
        return ctx

    def resources(self, resource_type: str) -> list[ResourceRecord]:
        if resource_type == "Encounter":
            return list(self.encounters)
        if resource_type == "Observation":
            return list(self.observations)
        if resource_type == "Condition":
            return list(self.conditions)
        return list(self.events.get(resource_type, ()))


def _encounter_order(encounter: EncounterRecord) -> tuple[str, str]:
    start = encounter.when.instant.isoformat() if encounter.when and encounter.when.instant else ""
    day = encounter.when.start_day.isoformat() if encounter.when else ""
    return (day + start, encounter.id)
