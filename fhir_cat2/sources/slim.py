"""Raw FHIR JSON -> slim records, through small pydantic models of only the fields the rules read.

The pydantic models validate shape and name the failing field; ``validated_record`` then flattens the
model into a ``records`` dataclass with references resolved and codes normalised. Full fhir.resources
models are never built on this path (they are ten to fifty times slower); they are kept for what we write.

``to_record``, the entry point, first tries ``direct.py``, which builds the same record from regular JSON
without pydantic; these models remain the validator of record for everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..terminology import normalise_system
from .direct import direct_record
from .records import (
    ClaimRecord,
    Code,
    ComponentRecord,
    ConditionRecord,
    CoverageRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    PatientRecord,
    QuantityValue,
    ResourceRecord,
    Src,
    When,
)
from .values import DO_NOT_PERFORM_EXTENSION as _DO_NOT_PERFORM
from .values import REASON_EXTENSIONS as _REASON_EXTENSIONS
from .values import REQUEST_TYPES as _REQUESTS
from .values import Resolver, parse_when
from .values import patient_id_of as _patient_id
from .values import plain_resolver as plain_resolver  # where sources and tests have always found it
from .values import split_ref as split_ref


class _Slim(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Coding(_Slim):
    system: str | None = None
    code: str | None = None


class CodeableConcept(_Slim):
    coding: list[Coding] = Field(default_factory=list)
    text: str | None = None


class Reference(_Slim):
    reference: str | None = None
    display: str | None = None


class Period(_Slim):
    start: str | None = None
    end: str | None = None


class Quantity(_Slim):
    value: float | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None
    comparator: str | None = None


class Extension(_Slim):
    url: str | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueBoolean: bool | None = None


class Duration(_Slim):
    value: float | None = None
    unit: str | None = None
    code: str | None = None


class DispenseRequest(_Slim):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: int | None = None
    quantity: Quantity | None = None
    expectedSupplyDuration: Duration | None = None


class TimingRepeat(_Slim):
    boundsPeriod: Period | None = None
    frequency: int | None = None
    frequencyMax: int | None = None
    period: float | None = None
    periodUnit: str | None = None
    timeOfDay: list[str] = Field(default_factory=list)


class Timing(_Slim):
    repeat: TimingRepeat | None = None


class DoseAndRate(_Slim):
    doseQuantity: Quantity | None = None
    doseRange: Any = None


class Dosage(_Slim):
    timing: Timing | None = None
    doseAndRate: list[DoseAndRate] = Field(default_factory=list)


class Meta(_Slim):
    lastUpdated: str | None = None
    versionId: str | None = None


class _Resource(_Slim):
    resourceType: str
    id: str | None = None
    meta: Meta | None = None


class Patient(_Resource):
    birthDate: str | None = None
    gender: str | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: str | None = None


class EncounterDiagnosis(_Slim):
    condition: Reference | None = None
    rank: int | None = None


class EncounterParticipant(_Slim):
    individual: Reference | None = None


class EncounterLocation(_Slim):
    location: Reference | None = None


class EncounterHospitalization(_Slim):
    dischargeDisposition: CodeableConcept | None = None


class Encounter(_Resource):
    status: str
    class_: Coding | None = Field(default=None, alias="class")
    type: list[CodeableConcept] = Field(default_factory=list)
    subject: Reference | None = None
    period: Period | None = None
    diagnosis: list[EncounterDiagnosis] = Field(default_factory=list)
    participant: list[EncounterParticipant] = Field(default_factory=list)
    serviceProvider: Reference | None = None
    location: list[EncounterLocation] = Field(default_factory=list)
    hospitalization: EncounterHospitalization | None = None

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ObservationComponent(_Slim):
    code: CodeableConcept
    valueQuantity: Quantity | None = None
    dataAbsentReason: CodeableConcept | None = None


class Observation(_Resource):
    status: str
    category: list[CodeableConcept] = Field(default_factory=list)
    code: CodeableConcept
    subject: Reference | None = None
    encounter: Reference | None = None
    effectiveDateTime: str | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: str | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueInteger: int | None = None
    valueString: str | None = None
    valueBoolean: bool | None = None
    dataAbsentReason: CodeableConcept | None = None
    component: list[ObservationComponent] = Field(default_factory=list)
    issued: str | None = None
    extension: list[Extension] = Field(default_factory=list)


class Condition(_Resource):
    code: CodeableConcept | None = None
    category: list[CodeableConcept] = Field(default_factory=list)
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    subject: Reference
    encounter: Reference | None = None
    onsetDateTime: str | None = None
    onsetPeriod: Period | None = None
    abatementDateTime: str | None = None
    abatementPeriod: Period | None = None
    recordedDate: str | None = None


class Event(_Resource):
    """Procedure, Immunization, MedicationRequest, ServiceRequest, DocumentReference, CarePlan, Consent."""

    status: str | None = None
    intent: str | None = None
    code: CodeableConcept | None = None
    vaccineCode: CodeableConcept | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    codeCodeableConcept: CodeableConcept | None = None
    type: CodeableConcept | None = None
    doNotPerform: bool | None = None
    category: list[CodeableConcept] = Field(default_factory=list)
    subject: Reference | None = None
    patient: Reference | None = None
    encounter: Reference | None = None
    context: Any = None
    performedDateTime: str | None = None
    performedPeriod: Period | None = None
    occurrenceDateTime: str | None = None
    occurrencePeriod: Period | None = None
    authoredOn: str | None = None
    date: str | None = None
    dateTime: str | None = None
    period: Period | None = None
    statusReason: CodeableConcept | None = None
    reasonCode: list[CodeableConcept] = Field(default_factory=list)
    extension: list[Extension] = Field(default_factory=list)
    modifierExtension: list[Extension] = Field(default_factory=list)
    dispenseRequest: DispenseRequest | None = None
    dosageInstruction: list[Dosage] = Field(default_factory=list)


class Coverage(_Resource):
    status: str | None = None
    beneficiary: Reference
    order: int | None = None
    period: Period | None = None


class ClaimInsurance(_Slim):
    sequence: int | None = None
    focal: bool | None = None
    coverage: Reference | None = None


class ClaimDiagnosis(_Slim):
    sequence: int | None = None
    diagnosisCodeableConcept: CodeableConcept | None = None
    diagnosisReference: Reference | None = None


class ClaimItem(_Slim):
    encounter: list[Reference] = Field(default_factory=list)


class Claim(_Resource):
    status: str | None = None
    patient: Reference
    provider: Reference | None = None
    insurance: list[ClaimInsurance] = Field(default_factory=list)
    diagnosis: list[ClaimDiagnosis] = Field(default_factory=list)
    item: list[ClaimItem] = Field(default_factory=list)


SLIM_MODELS: dict[str, type[_Resource]] = {
    "Patient": Patient,
    "Encounter": Encounter,
    "Observation": Observation,
    "Condition": Condition,
    "Procedure": Event,
    "Immunization": Event,
    "MedicationRequest": Event,
    "MedicationAdministration": Event,
    "ServiceRequest": Event,
    "DocumentReference": Event,
    "CarePlan": Event,
    "Consent": Event,
    "DeviceRequest": Event,
    "Coverage": Coverage,
    "Claim": Claim,
}

# The element that carries the clinical code, per resource type, for the cheap relevance check.
CODE_ELEMENT: dict[str, str] = {
    "Observation": "code",
    "Condition": "code",
    "Procedure": "code",
    "Immunization": "vaccineCode",
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationAdministration": "medicationCodeableConcept",
    "ServiceRequest": "code",
    "DocumentReference": "type",
    "CarePlan": "category",
    "Consent": "category",
    "DeviceRequest": "codeCodeableConcept",
}


# ----------------------------------------------------------------------------------------------- times


def parse_period(period: Period, field: str) -> When | None:
    start = parse_when(period.start, f"{field}.start") if period.start else None
    end = parse_when(period.end, f"{field}.end") if period.end else None
    if start and end:
        if end.end_day < start.start_day:
            raise InputError(f"{field}: end {period.end} is before start {period.start}")
        # A date-only end covers its whole day: no end instant (comparisons fall back to the day).
        end_instant = end.instant if period.end and len(period.end) > 10 else None
        return When(start.start_day, end.end_day, start.instant, end_instant)
    if start:
        return start
    if end:
        return When(end.start_day, end.end_day, end.instant)
    return None


def _when_of(field: str, dt: str | None, period: Period | None, instant: str | None = None) -> When | None:
    if dt:
        return parse_when(dt, f"{field}DateTime")
    if instant:
        return parse_when(instant, f"{field}Instant")
    if period:
        return parse_period(period, f"{field}Period")
    return None


# ----------------------------------------------------------------------------------------------- codes


def _codes(concept: CodeableConcept | None) -> frozenset[Code]:
    if concept is None:
        return frozenset()
    return frozenset((normalise_system(c.system), c.code) for c in concept.coding if c.code)


def _codes_of(concepts: Iterable[CodeableConcept]) -> frozenset[Code]:
    out: set[Code] = set()
    for concept in concepts:
        out.update(_codes(concept))
    return frozenset(out)


def _first_code(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    for coding in concept.coding:
        if coding.code:
            return coding.code
    return None


def _category_codes(concepts: list[CodeableConcept]) -> frozenset[str]:
    return frozenset(c.code for concept in concepts for c in concept.coding if c.code)


def _quantity(q: Quantity | None) -> QuantityValue | None:
    if q is None or q.value is None:
        return None
    return QuantityValue(float(q.value), q.code or q.unit, q.comparator)


# ----------------------------------------------------------------------------------------------- refs


def _ref(reference: Reference | None, resolve: Resolver) -> str | None:
    if reference is None or not reference.reference:
        return None
    return resolve(reference.reference)


def content_id(resource: dict[str, Any]) -> str:
    """A stable id for a resource that arrived without one: a hash of its content."""
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"sha256-{digest[:32]}"


# ----------------------------------------------------------------------------------------------- records


def _error_text(resource_type: str, id_: str | None, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]).replace("class_", "class")
        problems.append(f"{loc}: {err['msg']}")
    name = f"{resource_type}/{id_}" if id_ else resource_type
    return f"{name} is malformed: " + "; ".join(problems)


def to_record(resource: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> ResourceRecord:
    """The record of ``resource``: read directly when it is regular (``direct.py``, the same record several
    times faster), else validated with its slim model. Raises InputError naming the field."""
    record = direct_record(resource, src, resolve, resource_id)
    if record is not None:
        return record
    return validated_record(resource, src, resolve, resource_id)


def validated_record(
    resource: dict[str, Any], src: Src, resolve: Resolver, resource_id: str
) -> ResourceRecord:
    """Validate ``resource`` with its slim model and flatten it into a record. Raises InputError."""
    resource_type = resource["resourceType"]
    model_cls = SLIM_MODELS[resource_type]
    try:
        model = model_cls.model_validate(resource)
    except ValidationError as exc:
        raise InputError(_error_text(resource_type, resource_id, exc)) from None
    meta = model.meta
    base = {
        "resource_type": resource_type,
        "id": resource_id,
        "src": src,
        "last_updated": meta.lastUpdated if meta else None,
        "version_id": meta.versionId if meta else None,
    }
    name = f"{resource_type}/{resource_id}"
    try:
        return _BUILDERS[resource_type](model, base, resolve)
    except InputError as exc:
        raise InputError(f"{name}: {exc}", exc.kind) from None


def _build_patient(m: Any, base: dict[str, Any], resolve: Resolver) -> PatientRecord:
    birth = parse_when(m.birthDate, "birthDate").start_day if m.birthDate else None
    deceased_day = (
        parse_when(m.deceasedDateTime, "deceasedDateTime").start_day if m.deceasedDateTime else None
    )
    return PatientRecord(
        **base,
        patient_id=base["id"],
        birth_date=birth,
        gender=m.gender,
        deceased_day=deceased_day,
        deceased=bool(m.deceasedBoolean) or deceased_day is not None,
    )


def _build_encounter(m: Encounter, base: dict[str, Any], resolve: Resolver) -> EncounterRecord:
    provider = None
    for participant in m.participant:
        provider = _ref(participant.individual, resolve)
        if provider:
            break
    service_provider = _ref(m.serviceProvider, resolve)
    ranked = sorted(
        (d for d in m.diagnosis if d.condition and d.condition.reference),
        key=lambda d: d.rank if d.rank is not None else 1_000_000,
    )
    location = next((r for r in (_ref(loc.location, resolve) for loc in m.location) if r), None)
    return EncounterRecord(
        **base,
        patient_id=_patient_id(_ref(m.subject, resolve)),
        status=m.status,
        class_code=m.class_.code if m.class_ else None,
        type_codes=_codes_of(m.type),
        when=parse_period(m.period, "period") if m.period else None,
        diagnoses=tuple(r for r in (_ref(d.condition, resolve) for d in ranked) if r),
        provider_ref=provider or service_provider,
        location_ref=location,
        service_provider_ref=service_provider,
        discharge_codes=_codes(m.hospitalization.dischargeDisposition) if m.hospitalization else frozenset(),
    )


def _build_observation(m: Observation, base: dict[str, Any], resolve: Resolver) -> ObservationRecord:
    return ObservationRecord(
        **base,
        patient_id=_patient_id(_ref(m.subject, resolve)),
        status=m.status,
        categories=_category_codes(m.category),
        codes=_codes(m.code),
        encounter_ref=_ref(m.encounter, resolve),
        when=_when_of("effective", m.effectiveDateTime, m.effectivePeriod, m.effectiveInstant),
        quantity=_quantity(m.valueQuantity),
        value_codes=_codes(m.valueCodeableConcept),
        value_int=m.valueInteger,
        value_string=m.valueString,
        value_bool=m.valueBoolean,
        absent=m.dataAbsentReason is not None,
        components=tuple(
            ComponentRecord(_codes(c.code), _quantity(c.valueQuantity), c.dataAbsentReason is not None)
            for c in m.component
        ),
        issued=parse_when(m.issued, "issued") if m.issued else None,
        reason_codes=_extension_codes(m.extension, _REASON_EXTENSIONS),
    )


def _build_condition(m: Condition, base: dict[str, Any], resolve: Resolver) -> ConditionRecord:
    return ConditionRecord(
        **base,
        patient_id=_patient_id(_ref(m.subject, resolve)),
        codes=_codes(m.code),
        categories=_category_codes(m.category),
        clinical_status=_first_code(m.clinicalStatus),
        verification_status=_first_code(m.verificationStatus),
        onset=_when_of("onset", m.onsetDateTime, m.onsetPeriod),
        abatement=_when_of("abatement", m.abatementDateTime, m.abatementPeriod),
        recorded=parse_when(m.recordedDate, "recordedDate") if m.recordedDate else None,
        encounter_ref=_ref(m.encounter, resolve),
    )


def _build_event(m: Event, base: dict[str, Any], resolve: Resolver) -> EventRecord:
    concept = m.code or m.vaccineCode or m.medicationCodeableConcept or m.codeCodeableConcept or m.type
    codes = _codes(concept)
    if not codes and base["resource_type"] in ("CarePlan", "Consent"):
        codes = _codes_of(m.category)
    encounter = m.encounter or (Reference.model_validate(m.context) if isinstance(m.context, dict) else None)
    authored = parse_when(m.authoredOn, "authoredOn") if m.authoredOn else None
    if base["resource_type"] in _REQUESTS and authored is not None:
        when: When | None = authored  # QI-Core times orders by when they were authored
    else:
        when = (
            _when_of("performed", m.performedDateTime, m.performedPeriod)
            or _when_of("occurrence", m.occurrenceDateTime, m.occurrencePeriod)
            or authored
            or (parse_when(m.dateTime, "dateTime") if m.dateTime else None)
            or (parse_when(m.date, "date") if m.date else None)
            or (parse_period(m.period, "period") if m.period else None)
        )
    reasons = set(_codes(m.statusReason))
    reasons.update(_codes_of(m.reasonCode))
    reasons.update(_extension_codes(m.extension, _REASON_EXTENSIONS))
    do_not_perform = bool(m.doNotPerform) or any(
        e.valueBoolean is True and (e.url or "").endswith(_DO_NOT_PERFORM) for e in m.modifierExtension
    )
    supply = None
    if base["resource_type"] == "MedicationRequest":
        supply = medication_request_period(m, authored)
    return EventRecord(
        **base,
        patient_id=_patient_id(_ref(m.subject or m.patient, resolve)),
        status=m.status or "",
        codes=codes,
        when=when,
        encounter_ref=_ref(encounter, resolve),
        reason_codes=frozenset(reasons),
        categories=_category_codes(m.category),
        intent=m.intent,
        do_not_perform=do_not_perform,
        authored=authored,
        supply=supply,
    )


def _extension_codes(extensions: list[Extension], suffixes: tuple[str, ...]) -> frozenset[Code]:
    out: set[Code] = set()
    for extension in extensions:
        if extension.url and extension.url.endswith(suffixes):
            out.update(_codes(extension.valueCodeableConcept))
    return frozenset(out)


# Units of Timing.repeat.periodUnit in days, as CQL CumulativeMedicationDuration ToDaily reads them.
_PERIOD_DAYS = {
    "s": 1 / 86400,
    "second": 1 / 86400,
    "seconds": 1 / 86400,
    "min": 1 / 1440,
    "minute": 1 / 1440,
    "minutes": 1 / 1440,
    "h": 1 / 24,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "year": 365,
    "years": 365,
}
_DURATION_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "h": 1 / 24,
    "mo": 30,
    "a": 365,
}


def medication_request_period(m: Event, authored: When | None) -> When | None:
    """The days a MedicationRequest's supply covers, as CQL medicationRequestPeriod() computes it.

    Start: the dosage bounds start, else authoredOn, else the dispense validity start. Length: expected
    supply duration in days, else quantity / (dose x doses per day), times (1 + refills). Without a length,
    the bounds end closes it; otherwise there is no period (CQL returns null).
    """
    dosage = m.dosageInstruction[0] if len(m.dosageInstruction) == 1 else None
    repeat = dosage.timing.repeat if dosage and dosage.timing else None
    bounds = parse_period(repeat.boundsPeriod, "boundsPeriod") if repeat and repeat.boundsPeriod else None
    dispense = m.dispenseRequest
    validity = (
        parse_period(dispense.validityPeriod, "dispenseRequest.validityPeriod")
        if dispense and dispense.validityPeriod
        else None
    )
    if bounds is not None and repeat is not None and repeat.boundsPeriod and repeat.boundsPeriod.start:
        start = bounds.start_day
    elif authored is not None:
        start = authored.start_day
    elif validity is not None and dispense and dispense.validityPeriod and dispense.validityPeriod.start:
        start = validity.start_day
    else:
        return None
    days: float | None = None
    if dispense and dispense.expectedSupplyDuration and dispense.expectedSupplyDuration.value is not None:
        unit = dispense.expectedSupplyDuration.code or dispense.expectedSupplyDuration.unit or "d"
        factor = _DURATION_DAYS.get(unit)
        if factor is not None:
            days = dispense.expectedSupplyDuration.value * factor
    if days is None and dispense and dispense.quantity and dispense.quantity.value is not None and dosage:
        dose_and_rate = dosage.doseAndRate[0] if len(dosage.doseAndRate) == 1 else None
        dose = None
        if dose_and_rate is not None:
            if dose_and_rate.doseQuantity is not None:
                dose = dose_and_rate.doseQuantity.value
            elif isinstance(dose_and_rate.doseRange, dict):
                dose = (dose_and_rate.doseRange.get("high") or {}).get("value")
        per_day = None
        if repeat is not None:
            frequency = repeat.frequencyMax if repeat.frequencyMax is not None else repeat.frequency
            if frequency is not None and repeat.period and repeat.periodUnit in _PERIOD_DAYS:
                per_day = frequency / (repeat.period * _PERIOD_DAYS[repeat.periodUnit])
            elif repeat.timeOfDay:
                per_day = float(len(repeat.timeOfDay))
        if per_day is None:
            per_day = 1.0
        if dose:
            days = dispense.quantity.value / (float(dose) * per_day)
    if days is not None:
        refills = dispense.numberOfRepeatsAllowed or 0 if dispense else 0
        total = days * (1 + refills)
        end = date.fromordinal(start.toordinal() + max(int(total - 1), 0))  # CQL: start + (total - 1) days
        return When(start, end)
    if bounds is not None and repeat and repeat.boundsPeriod and repeat.boundsPeriod.end:
        return When(start, bounds.end_day)
    return None


def _build_coverage(m: Coverage, base: dict[str, Any], resolve: Resolver) -> CoverageRecord:
    return CoverageRecord(
        **base,
        patient_id=_patient_id(_ref(m.beneficiary, resolve)),
        status=m.status or "",
        order=m.order,
        period=parse_period(m.period, "period") if m.period else None,
    )


def _build_claim(m: Claim, base: dict[str, Any], resolve: Resolver) -> ClaimRecord:
    encounters = {r for item in m.item for r in (_ref(e, resolve) for e in item.encounter) if r}
    insurance = []
    for index, ins in enumerate(m.insurance, start=1):
        coverage = None
        if ins.coverage is not None:
            coverage = _ref(ins.coverage, resolve)
        if coverage:
            insurance.append((ins.sequence or index, bool(ins.focal), coverage))
    diagnoses = []
    for index, dx in enumerate(m.diagnosis, start=1):
        for code in sorted(_codes(dx.diagnosisCodeableConcept)):
            diagnoses.append((dx.sequence or index, code))
            break
    return ClaimRecord(
        **base,
        patient_id=_patient_id(_ref(m.patient, resolve)),
        status=m.status or "",
        encounter_refs=frozenset(encounters),
        insurance=tuple(insurance),
        provider_ref=_ref(m.provider, resolve),
        diagnosis_codes=tuple(diagnoses),
    )


_BUILDERS: dict[str, Callable[[Any, dict[str, Any], Resolver], ResourceRecord]] = {
    "Patient": _build_patient,
    "Encounter": _build_encounter,
    "Observation": _build_observation,
    "Condition": _build_condition,
    "Procedure": _build_event,
    "Immunization": _build_event,
    "MedicationRequest": _build_event,
    "MedicationAdministration": _build_event,
    "ServiceRequest": _build_event,
    "DocumentReference": _build_event,
    "CarePlan": _build_event,
    "Consent": _build_event,
    "DeviceRequest": _build_event,
    "Coverage": _build_coverage,
    "Claim": _build_claim,
}
