"""Slim records: the few fields of each FHIR resource that rules and measures read.

Sources turn raw JSON into these (each type through its field map, ``fields.py``); everything downstream
reads only these.
They are plain slotted dataclasses: cheap to build, cheap to pickle when the grouper spills to disk.
Times are kept as local calendar days (``datetime.date``, the day as documented, in the timestamp's own
offset) plus an aware instant for ordering within a day.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..conceptmaps import CodeMapping

Code = tuple[str, str]
"""A (system, code) pair. System is normalised (see ``normalise_system``)."""


_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*$")


def number_in_text(text: str) -> float | None:
    """'12' or ' 7.5 ' -> the number; anything else ('<7', '7-8', 'positive') -> None."""
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else None


@dataclass(slots=True, frozen=True)
class Src:
    """Where an input item came from: a file and a position inside it (``entry[3]``, ``line 17``)."""

    file: str
    position: str

    def __str__(self) -> str:
        return f"{self.file} {self.position}" if self.position else self.file

    def __reduce__(self) -> tuple[type[Src], tuple[str, str]]:
        return Src, (self.file, self.position)  # see _FIELD_VALUES


@dataclass(slots=True, frozen=True)
class When:
    """A documented time: first and last calendar day it covers, and the instant used for ordering."""

    start_day: date
    end_day: date
    instant: datetime | None = None
    """The start instant (used for ordering)."""
    end_instant: datetime | None = None
    """The end instant of a period, when known."""

    def __reduce__(self) -> tuple[type[When], tuple[date, date, datetime | None, datetime | None]]:
        return When, (self.start_day, self.end_day, self.instant, self.end_instant)  # see _FIELD_VALUES

    @property
    def is_single_day(self) -> bool:
        return self.start_day == self.end_day


def _reduce_by_fields(record: Any) -> tuple[type, tuple[Any, ...]]:
    return type(record), _FIELD_VALUES[type(record)](record)


@dataclass(slots=True)
class QuantityValue:
    value: float
    unit: str | None
    comparator: str | None = None


@dataclass(slots=True)
class ComponentRecord:
    codes: frozenset[Code]
    quantity: QuantityValue | None
    absent: bool


@dataclass(slots=True)
class ResourceRecord:
    """Fields every record has."""

    resource_type: str
    id: str
    patient_id: str | None
    src: Src
    last_updated: str | None
    version_id: str | None

    @property
    def ref(self) -> str:
        return f"{self.resource_type}/{self.id}"

    # What criteria read, defined once per record type (the types that have the field override these).

    @property
    def primary_codes(self) -> frozenset[Code]:
        """The codes a criterion's value sets are matched against (QI-Core's primary code path): an
        Encounter's type, else the resource's code."""
        return frozenset()

    @property
    def category_codes(self) -> frozenset[str]:
        return frozenset()

    @property
    def status_code(self) -> str | None:
        """The status a criterion tests: a Condition's clinical status, else ``status``; None when not
        documented."""
        return None

    @property
    def reasons(self) -> frozenset[Code]:
        """Why it was (not) done: reasonCode, statusReason, notDoneReason."""
        return frozenset()

    @property
    def not_done(self) -> bool:
        """QI-Core negation: ObservationCancelled, ProcedureNotDone, ImmunizationNotDone, *NotRequested."""
        return False

    @property
    def mappings(self) -> tuple[CodeMapping, ...]:
        """Codes a site ConceptMap added to ``primary_codes`` (see ``conceptmaps.py``)."""
        return ()

    def time_of(self, timing_of: str = "default") -> When | None:
        """The documented time a criterion's ``timing_of`` reads ("default": effective, performed, the
        period...; "issued", "supply", "authored"); None when there is none such."""
        return None


@dataclass(slots=True)
class PatientRecord(ResourceRecord):
    birth_date: date | None = None
    gender: str | None = None
    deceased_day: date | None = None
    deceased: bool = False


@dataclass(slots=True)
class EncounterRecord(ResourceRecord):
    status: str = ""
    class_code: str | None = None
    type_codes: frozenset[Code] = frozenset()
    when: When | None = None
    diagnoses: tuple[str, ...] = ()
    """References of the encounter's diagnoses (Condition/..), in rank order."""
    provider_ref: str | None = None
    """Rendering provider: first participant individual, else serviceProvider."""
    location_ref: str | None = None
    service_provider_ref: str | None = None
    discharge_codes: frozenset[Code] = frozenset()
    reason_codes: frozenset[Code] = frozenset()
    """reasonCode: why the encounter took place."""
    mapped: tuple[CodeMapping, ...] = ()
    """Codes a site ConceptMap added to ``type_codes`` (see ``conceptmaps.py``)."""
    principal_diagnosis: str | None = None
    """Reference of the diagnosis ranked 1 with use billing (QICoreCommon principalDiagnosis())."""

    @property
    def primary_codes(self) -> frozenset[Code]:
        return self.type_codes

    @property
    def status_code(self) -> str | None:
        return self.status or None

    @property
    def reasons(self) -> frozenset[Code]:
        return self.reason_codes

    @property
    def mappings(self) -> tuple[CodeMapping, ...]:
        return self.mapped

    def time_of(self, timing_of: str = "default") -> When | None:
        return self.when if timing_of == "default" else None


@dataclass(slots=True)
class ObservationRecord(ResourceRecord):
    status: str = ""
    categories: frozenset[str] = frozenset()
    codes: frozenset[Code] = frozenset()
    encounter_ref: str | None = None
    when: When | None = None
    quantity: QuantityValue | None = None
    value_codes: frozenset[Code] = frozenset()
    value_int: int | None = None
    value_string: str | None = None
    value_bool: bool | None = None
    value_other: bool = False
    """A value of another type is there (valueRange, valueRatio, valueSampledData, valueTime,
    valueDateTime, valuePeriod): read only by ``has_value``."""
    absent: bool = False
    components: tuple[ComponentRecord, ...] = ()
    issued: When | None = None
    reason_codes: frozenset[Code] = frozenset()
    """QI-Core notDoneReason of a cancelled (not done) Observation."""
    mapped: tuple[CodeMapping, ...] = ()
    """Codes a site ConceptMap added to ``codes`` (see ``conceptmaps.py``)."""
    part_of: tuple[str, ...] = ()
    """partOf: the events (Procedure/.., Immunization/..) it is part of, resolved to Type/id."""
    value_displays: frozenset[tuple[str, str, str]] = frozenset()
    """(system, code, display) of the valueCodeableConcept codings with a display and no version: what CQL
    Code equality (``(value as Concept).codes contains C``) compares with a code declared with a display."""

    @property
    def number(self) -> float | None:
        """The numeric value whether sent as valueQuantity, valueInteger or a plain number in valueString."""
        if self.quantity is not None and not self.quantity.comparator:
            return self.quantity.value
        if self.value_int is not None:
            return float(self.value_int)
        if self.value_string is not None:
            return number_in_text(self.value_string)
        return None

    @property
    def has_value(self) -> bool:
        """Whether a value is documented (of any type; not one given as absent)."""
        if self.absent:
            return False
        return bool(
            self.quantity is not None
            or self.value_codes
            or self.value_int is not None
            or self.value_string
            or self.value_bool is not None
            or self.value_other
        )

    @property
    def shown_value(self) -> str:
        """The value as an explanation shows it: its codes, its number, or the start of its text."""
        if self.value_codes:
            return ",".join(sorted(c for _, c in self.value_codes))
        number = self.number
        if number is not None:
            return f"{number:g}"
        if self.value_string:
            return repr(self.value_string[:20])
        return "(none)"

    @property
    def primary_codes(self) -> frozenset[Code]:
        return self.codes

    @property
    def category_codes(self) -> frozenset[str]:
        return self.categories

    @property
    def status_code(self) -> str | None:
        return self.status or None

    @property
    def reasons(self) -> frozenset[Code]:
        return self.reason_codes

    @property
    def not_done(self) -> bool:
        return self.status == "cancelled"

    @property
    def mappings(self) -> tuple[CodeMapping, ...]:
        return self.mapped

    def time_of(self, timing_of: str = "default") -> When | None:
        if timing_of == "issued":
            return self.issued
        return self.when if timing_of == "default" else None


@dataclass(slots=True)
class ConditionRecord(ResourceRecord):
    codes: frozenset[Code] = frozenset()
    categories: frozenset[str] = frozenset()
    clinical_status: str | None = None
    verification_status: str | None = None
    onset: When | None = None
    abatement: When | None = None
    recorded: When | None = None
    encounter_ref: str | None = None
    body_sites: frozenset[Code] = frozenset()
    """bodySite codes (e.g. which side a unilateral mastectomy was on)."""
    mapped: tuple[CodeMapping, ...] = ()
    """Codes a site ConceptMap added to ``codes`` (see ``conceptmaps.py``)."""
    severity: frozenset[Code] = frozenset()
    """Condition.severity codes (AHAOverall: LVSD 134401001 with a moderate or severe severity)."""

    @property
    def primary_codes(self) -> frozenset[Code]:
        return self.codes

    @property
    def category_codes(self) -> frozenset[str]:
        return self.categories

    @property
    def status_code(self) -> str | None:
        return self.clinical_status

    @property
    def mappings(self) -> tuple[CodeMapping, ...]:
        return self.mapped


@dataclass(slots=True)
class EventRecord(ResourceRecord):
    """Procedure, Immunization, MedicationRequest, ServiceRequest, DocumentReference, Communication...: a
    coded act (a Communication is coded by its reasonCode, as QI-Core's primary code path)."""

    status: str = ""
    codes: frozenset[Code] = frozenset()
    when: When | None = None
    encounter_ref: str | None = None
    reason_codes: frozenset[Code] = frozenset()
    """statusReason / reasonCode codes: why it was (not) done."""
    categories: frozenset[str] = frozenset()
    intent: str | None = None
    do_not_perform: bool = False
    """doNotPerform, or the QI-Core doNotPerform modifier extension (DeviceRequest)."""
    authored: When | None = None
    supply: When | None = None
    """MedicationRequest: the days its supply covers (CQL CumulativeMedicationDuration
    medicationRequestPeriod)."""
    recorded: When | None = None
    """The QI-Core recorded extension (when a ProcedureNotDone was recorded)."""
    mapped: tuple[CodeMapping, ...] = ()
    """Codes a site ConceptMap added to ``codes`` (see ``conceptmaps.py``)."""
    dosage: When | None = None
    """MedicationRequest: the first of its dosage bounds periods, collapsed (``timing_of: dosage``); an
    open end is ``date.max``."""
    verification_status: str | None = None
    """AllergyIntolerance: its verificationStatus code (its clinicalStatus is ``status``)."""
    dosages: tuple[When, ...] = ()
    """MedicationRequest: every dosage's bounds period (``timing_of: dosages``: a relation holds when it holds
    for one of them); an open end is ``date.max``."""
    onset: When | None = None
    """AllergyIntolerance: its onset (onsetDateTime or onsetPeriod: ``onset.toInterval()``,
    ``timing_of: onset``)."""
    first_event: When | None = None
    """MedicationRequest: the earliest of its dosage timing events (``timing_of: dosage-start``)."""
    days_supplied: float | None = None
    """MedicationRequest: the days its supply covers, refills included (CQL totalDaysSupplied); None when it
    cannot be told."""
    refills: int | None = None
    """MedicationRequest: dispenseRequest.numberOfRepeatsAllowed."""
    dispensed: QuantityValue | None = None
    """MedicationRequest: dispenseRequest.quantity."""
    based_on: tuple[str, ...] = ()
    """The requests its basedOn refers to (Type/id): a Task's, a Communication's, a Procedure's or an
    order's (``refers_to``, ``criteria/links.py``)."""

    @property
    def primary_codes(self) -> frozenset[Code]:
        return self.codes

    @property
    def category_codes(self) -> frozenset[str]:
        return self.categories

    @property
    def status_code(self) -> str | None:
        return self.status or None

    @property
    def reasons(self) -> frozenset[Code]:
        return self.reason_codes

    @property
    def not_done(self) -> bool:
        return self.status == "not-done" or self.do_not_perform

    @property
    def mappings(self) -> tuple[CodeMapping, ...]:
        return self.mapped

    def time_of(self, timing_of: str = "default") -> When | None:
        if timing_of == "supply":
            return self.supply
        if timing_of == "dosage":
            return self.dosage
        if timing_of == "dosages":  # the first; a relation is tested on each (criteria/spans.py)
            return self.dosages[0] if self.dosages else None
        if timing_of == "onset":
            return self.onset
        if timing_of == "dosage-start":  # CQL NormalizeInterval(first event, first bounds period).earliest()
            if self.first_event is not None:
                return self.first_event
            bounds = self.dosage
            if bounds is None:
                return None
            return When(bounds.start_day, bounds.start_day, bounds.instant, bounds.instant)
        if timing_of == "authored":
            return self.authored
        if timing_of == "recorded":
            return self.recorded
        return self.when if timing_of == "default" else None


@dataclass(slots=True)
class CoverageRecord(ResourceRecord):
    status: str = ""
    order: int | None = None
    period: When | None = None


@dataclass(slots=True)
class ClaimRecord(ResourceRecord):
    """A billing Claim already in the input: a source of insurance, provider and diagnosis pointers."""

    status: str = ""
    encounter_refs: frozenset[str] = frozenset()
    insurance: tuple[tuple[int, bool, str], ...] = ()
    """(sequence, focal, coverage reference or display) per insurance entry."""
    provider_ref: str | None = None
    diagnosis_codes: tuple[tuple[int, Code], ...] = ()


# Pickled as (class, field values), rebuilt by the positional __init__: the spill to disk pickles every
# record, and the default for slotted classes (a dict of slot names per object, and for frozen dataclasses
# a call to fields() per object) was two to ten times slower and a third bigger.
_FIELD_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {}
for _cls in (
    QuantityValue,
    ComponentRecord,
    PatientRecord,
    EncounterRecord,
    ObservationRecord,
    ConditionRecord,
    EventRecord,
    CoverageRecord,
    ClaimRecord,
):
    _FIELD_VALUES[_cls] = attrgetter(*(f.name for f in fields(_cls)))
    _cls.__reduce__ = _reduce_by_fields  # type: ignore[assignment,method-assign]
