"""One patient with everything documented about them: the unit every rule and measure works on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from .sources.records import (
    ClaimRecord,
    Code,
    ConditionRecord,
    CoverageRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    PatientRecord,
    ResourceRecord,
    When,
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
    _by_code: dict[str, dict[Code, list[ResourceRecord]]] = field(default_factory=dict, repr=False)
    _position: dict[int, int] = field(default_factory=dict, repr=False)

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

    def as_of(self, day: date) -> PatientContext:
        """The record as it stood at the end of ``day``: what was documented later is left out.

        A resource counts from its first day (an order from authoredOn, a Condition from its onset, or its
        recorded date when it has no onset); resources without a date are kept.
        """
        ctx = PatientContext(self.patient_id, self.patient)
        ctx.encounters = [e for e in self.encounters if _known_by(e.when, day)]
        ctx.encounter_by_ref = {e.ref: e for e in ctx.encounters}
        ctx.observations = [o for o in self.observations if _known_by(o.when, day)]
        ctx.conditions = [c for c in self.conditions if _known_by(c.onset or c.recorded, day)]
        ctx.condition_by_ref = {c.ref: c for c in ctx.conditions}
        ctx.events = {
            kind: [e for e in items if _known_by(e.authored or e.when, day)]
            for kind, items in self.events.items()
        }
        ctx.coverages = self.coverages
        ctx.claims = self.claims
        return ctx

    def with_codes(self, resource_type: str, codes: frozenset[Code]) -> list[ResourceRecord]:
        """Resources of a type having at least one of ``codes`` (an Encounter's type), in context order."""
        index = self._code_index(resource_type)
        if len(index) <= len(codes):
            hits = [items for code, items in index.items() if code in codes]
        else:
            hits = [index[code] for code in codes if code in index]
        if not hits:
            return []
        if len(hits) == 1:
            return list(hits[0])
        unique = {id(record): record for items in hits for record in items}
        return sorted(unique.values(), key=lambda record: self._position[id(record)])  # context order

    def has_codes(self, resource_type: str, codes: frozenset[Code]) -> bool:
        """Whether some resource of a type has one of ``codes`` (``with_codes`` without building the list)."""
        return not self._code_index(resource_type).keys().isdisjoint(codes)

    def _code_index(self, resource_type: str) -> dict[Code, list[ResourceRecord]]:
        index = self._by_code.get(resource_type)
        if index is None:
            index = {}
            for position, record in enumerate(self.resources(resource_type)):
                self._position[id(record)] = position
                for code in record.primary_codes:
                    index.setdefault(code, []).append(record)
            self._by_code[resource_type] = index
        return index

    def resources(self, resource_type: str) -> list[ResourceRecord]:
        if resource_type == "Encounter":
            return list(self.encounters)
        if resource_type == "Observation":
            return list(self.observations)
        if resource_type == "Condition":
            return list(self.conditions)
        return list(self.events.get(resource_type, ()))


def _known_by(when: When | None, day: date) -> bool:
    return when is None or when.start_day <= day


def _encounter_order(encounter: EncounterRecord) -> tuple[str, str]:
    start = encounter.when.instant.isoformat() if encounter.when and encounter.when.instant else ""
    day = encounter.when.start_day.isoformat() if encounter.when else ""
    return (day + start, encounter.id)
