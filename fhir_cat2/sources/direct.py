"""Raw JSON -> slim records without pydantic, for resources shaped exactly as the slim models expect.

Validating with the pydantic slim models and then flattening costs about 40 us a record, most of ingest.
Almost all input is regular FHIR in which every field the slim models declare already has its exact JSON
type, so this path reads such a resource straight from the dict and builds the same record as
``slim.to_record`` would. It checks the type of every field the slim models declare, read or not (pydantic
would reject a malformed one and the resource would be quarantined), and accepts only what it reads the same
way: exact types, no coercion (a number in a string, 1.0 for an integer, null for a list). Anything else,
and any error while building (a bad date), raises ``_Unexpected`` or ``InputError``, and the resource
goes through ``slim.validated_record``, the validator of record, whose errors name the field for
quarantine. So this path only ever produces a record the pydantic path produces too;
tests/test_direct_records.py checks that both give equal records on the corpora and on mutated resources.

Types it does not read (Patient, Coverage: one or two a patient) always take the pydantic path.

It is the hot loop of ingest, so it is written for CPython: absent elements are skipped before any call,
and records are built with positional arguments (commented with their field names), several times cheaper
than twenty keywords.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import InputError
from ..terminology import normalise_system
from .records import (
    ClaimRecord,
    Code,
    ComponentRecord,
    ConditionRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    QuantityValue,
    ResourceRecord,
    Src,
    When,
)
from .values import (
    DO_NOT_PERFORM_EXTENSION,
    REASON_EXTENSIONS,
    REQUEST_TYPES,
    Resolver,
    parse_when,
    patient_id_of,
)


class _Unexpected(Exception):
    """The direct path does not read this input exactly as the slim models would."""


def direct_record(
    resource: dict[str, Any], src: Src, resolve: Resolver, resource_id: str
) -> ResourceRecord | None:
    """The record of a regular resource, as ``slim.validated_record`` would build it; None when this path
    does not apply, and the pydantic one must decide."""
    build = _DIRECT.get(resource["resourceType"])
    if build is None:
        return None
    try:
        return build(resource, src, resolve, resource_id)
    except (_Unexpected, InputError):
        return None  # the validator of record decides, and names the field if it rejects it


# --------------------------------------------------------------------------------------------- caches
# The same codes, categories and timestamps come back in resource after resource (an encounter's time is
# shared by its observations and procedures). Sharing one immutable frozenset/When per distinct value saves
# building it again and keeps one copy in memory. Each cache is cleared when full, so it stays small
# whatever the input; input arrives patient by patient, so the values in use are the recent ones.

_CACHE_SIZE = 8192
_NO_CODES: frozenset[Code] = frozenset()
_NO_CATEGORIES: frozenset[str] = frozenset()
_code_sets: dict[tuple[str | None, ...], frozenset[Code]] = {}
_category_sets: dict[frozenset[Code], frozenset[str]] = {}
_whens: dict[str, When] = {}
_periods: dict[tuple[str | None, str | None], When | None] = {}
_patient_ids: dict[str, str | None] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


# --------------------------------------------------------------------------------------------- elements
# Each reads one FHIR element as its slim model declares it: absent or null is None (all optional scalar
# and object fields default to None); list fields default to [] and reject null.

_ABSENT: tuple[()] = ()
"""What ``_list`` gives for an absent list: iterates like an empty one, and is no JSON value."""


def _str(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise _Unexpected


def _bool(value: Any) -> bool | None:
    if value is None or type(value) is bool:
        return value
    raise _Unexpected


def _int(value: Any) -> int | None:
    if value is None or type(value) is int:  # not bool (a subclass), which pydantic would coerce
        return value
    raise _Unexpected


def _dict(value: Any) -> dict[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    raise _Unexpected


def _list(element: dict[str, Any], key: str) -> list[Any] | tuple[()]:
    value = element.get(key, _ABSENT)
    if type(value) is list or value is _ABSENT:
        return value
    raise _Unexpected  # null, or not a list


def _concepts(element: dict[str, Any], key: str) -> list[Any] | tuple[()]:
    """A list of CodeableConcepts. Its entries must be objects: pydantic rejects a null entry."""
    concepts = _list(element, key)
    for concept in concepts:
        if type(concept) is not dict:
            raise _Unexpected
    return concepts


def _codes(concept: Any) -> frozenset[Code]:
    """A CodeableConcept's (normalised system, code) pairs, as slim._codes."""
    if concept is None:
        return _NO_CODES
    if type(concept) is not dict:
        raise _Unexpected
    text = concept.get("text")
    if text is not None and type(text) is not str:  # inline checks here and in _ref: the hottest calls
        raise _Unexpected
    codings = concept.get("coding", _ABSENT)
    if type(codings) is not list:
        if codings is _ABSENT:
            return _NO_CODES
        raise _Unexpected
    key: tuple[str | None, ...]
    if len(codings) == 1:  # the common case: the cache key is its (system, code)
        coding = codings[0]
        if type(coding) is not dict:
            raise _Unexpected
        system = coding.get("system")
        code = coding.get("code")
        if (system is not None and type(system) is not str) or (code is not None and type(code) is not str):
            raise _Unexpected
        if not code:
            return _NO_CODES
        key = (system, code)
    else:
        raw: list[str | None] = []  # system, code, system, code...
        for coding in codings:
            if type(coding) is not dict:
                raise _Unexpected
            system = coding.get("system")
            code = coding.get("code")
            if (system is not None and type(system) is not str) or (
                code is not None and type(code) is not str
            ):
                raise _Unexpected
            if code:
                raw.append(system)
                raw.append(code)
        key = tuple(raw)
    codes = _code_sets.get(key)
    if codes is None:
        codes = frozenset((normalise_system(key[i]), key[i + 1]) for i in range(0, len(key), 2))  # type: ignore[misc]
        _remember(_code_sets, key, codes)
    return codes


def _codes_of(concepts: list[Any] | tuple[()]) -> frozenset[Code]:
    """The codes of a list of CodeableConcepts (entries checked by ``_concepts``), as slim._codes_of."""
    if len(concepts) == 1:
        return _codes(concepts[0])
    out: set[Code] = set()
    for concept in concepts:
        out.update(_codes(concept))
    return frozenset(out)


def _categories(concepts: list[Any] | tuple[()]) -> frozenset[str]:
    """The codes of a list of CodeableConcepts, systems aside (slim._category_codes)."""
    if not concepts:
        return _NO_CATEGORIES
    codes = _codes_of(concepts)
    categories = _category_sets.get(codes)
    if categories is None:
        categories = frozenset(code for _system, code in codes)
        _remember(_category_sets, codes, categories)
    return categories


def _first_code(concept: Any) -> str | None:
    """slim._first_code: the code of the first coding that has one."""
    _codes(concept)  # checks it
    if concept is None:
        return None
    for coding in concept.get("coding") or ():
        if coding.get("code"):
            return coding["code"]  # type: ignore[no-any-return]
    return None


def _ref(reference: Any, resolve: Resolver) -> str | None:
    """A Reference, resolved: None when it has no reference."""
    if reference is None:
        return None
    if type(reference) is not dict:
        raise _Unexpected
    target = reference.get("reference")
    display = reference.get("display")
    if (target is not None and type(target) is not str) or (display is not None and type(display) is not str):
        raise _Unexpected
    return resolve(target) if target else None


def _patient_of(ref: str | None) -> str | None:
    """patient_id_of, once per distinct reference."""
    if not ref:
        return None
    patient_id = _patient_ids.get(ref, _ABSENT)
    if patient_id is _ABSENT:
        patient_id = patient_id_of(ref)
        _remember(_patient_ids, ref, patient_id)
    return patient_id  # type: ignore[return-value]


def _when(value: str) -> When:
    """parse_when, once per distinct value. Its InputError sends the resource to the pydantic path."""
    when = _whens.get(value)
    if when is None:
        when = parse_when(value, "")
        _remember(_whens, value, when)
    return when


def _period(period: Any) -> When | None:
    """slim.parse_period of a raw Period."""
    if period is None:
        return None
    if type(period) is not dict:
        raise _Unexpected
    start = _str(period.get("start"))
    end = _str(period.get("end"))
    key = (start, end)
    when = _periods.get(key, _ABSENT)
    if when is not _ABSENT:
        return when  # type: ignore[return-value]
    start_when = _when(start) if start else None
    end_when = _when(end) if end else None
    if start_when and end_when:
        if end_when.end_day < start_when.start_day:
            raise _Unexpected  # the pydantic path names it
        # A date-only end covers its whole day: no end instant (comparisons fall back to the day).
        end_instant = end_when.instant if end and len(end) > 10 else None
        when = When(start_when.start_day, end_when.end_day, start_when.instant, end_instant)
    elif start_when:
        when = start_when
    elif end_when:
        when = When(end_when.start_day, end_when.end_day, end_when.instant)
    else:
        when = None
    _remember(_periods, key, when)
    return when


def _when_of(
    resource: dict[str, Any], date_time_key: str, period_key: str, instant_key: str | None = None
) -> When | None:
    """slim._when_of: the dateTime, else the instant, else the period; all of them checked."""
    date_time = _str(resource.get(date_time_key))
    period = resource.get(period_key)
    instant = _str(resource.get(instant_key)) if instant_key else None
    if date_time:
        if period is not None:
            _period(period)  # checked though unused
        return _when(date_time)
    if instant:
        if period is not None:
            _period(period)
        return _when(instant)
    return _period(period) if period is not None else None


def _quantity(quantity: Any) -> QuantityValue | None:
    """slim._quantity of a raw Quantity."""
    if type(quantity) is not dict:
        raise _Unexpected
    value = quantity.get("value")
    unit = _str(quantity.get("unit"))
    code = _str(quantity.get("code"))
    comparator = _str(quantity.get("comparator"))
    _str(quantity.get("system"))  # checked; not read
    if type(value) is not float:
        if value is None:
            return None
        if type(value) is not int:  # bool, or a number in a string: pydantic coerces those
            raise _Unexpected
        value = float(value)  # as pydantic's float does
    return QuantityValue(value, code or unit, comparator)


def _extensions(resource: dict[str, Any], key: str) -> list[tuple[str | None, frozenset[Code], bool | None]]:
    """(url, valueCodeableConcept codes, valueBoolean) of each Extension of the list."""
    out = []
    for extension in _list(resource, key):
        if type(extension) is not dict:
            raise _Unexpected
        out.append(
            (
                _str(extension.get("url")),
                _codes(extension.get("valueCodeableConcept")),
                _bool(extension.get("valueBoolean")),
            )
        )
    return out


def _reason_extension_codes(resource: dict[str, Any]) -> frozenset[Code]:
    """slim._extension_codes(extension, REASON_EXTENSIONS)."""
    if "extension" not in resource:
        return _NO_CODES
    out: set[Code] = set()
    for url, codes, _value in _extensions(resource, "extension"):
        if url and url.endswith(REASON_EXTENSIONS):
            out.update(codes)
    return frozenset(out)


def _meta(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    """(lastUpdated, versionId), after checking the id's type as slim._Resource does."""
    _str(resource.get("id"))  # checked; not read
    meta = resource.get("meta")
    if meta is None:
        return None, None
    if type(meta) is not dict:
        raise _Unexpected
    return _str(meta.get("lastUpdated")), _str(meta.get("versionId"))


# --------------------------------------------------------------------------------------------- records
# Each mirrors slim's _build_* of the same name; keep them in step (the equivalence tests will tell).


def _encounter(r: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> EncounterRecord:
    last_updated, version_id = _meta(r)
    status = r.get("status")
    if type(status) is not str or "class_" in r:  # class_ is the model's own name for "class", also accepted
        raise _Unexpected
    encounter_class = r.get("class")
    class_code = None
    if encounter_class is not None:
        if type(encounter_class) is not dict:
            raise _Unexpected
        _str(encounter_class.get("system"))
        class_code = _str(encounter_class.get("code"))
    provider = None
    for participant in _list(r, "participant"):
        if type(participant) is not dict:
            raise _Unexpected
        individual = _ref(participant.get("individual"), resolve)
        if provider is None and individual:
            provider = individual
    service_provider = _ref(r.get("serviceProvider"), resolve)
    ranked = []
    for diagnosis in _list(r, "diagnosis"):
        if type(diagnosis) is not dict:
            raise _Unexpected
        condition = diagnosis.get("condition")
        rank = _int(diagnosis.get("rank"))
        target = _ref(condition, resolve)
        if condition is not None and condition.get("reference"):
            ranked.append((rank if rank is not None else 1_000_000, target))
    ranked.sort(key=lambda pair: pair[0])  # stable, as slim's sorted()
    location = None
    for place in _list(r, "location"):
        if type(place) is not dict:
            raise _Unexpected
        ref = _ref(place.get("location"), resolve)
        if location is None and ref:
            location = ref
    hospitalization = _dict(r.get("hospitalization"))
    discharge = _NO_CODES
    if hospitalization is not None:
        discharge = _codes(hospitalization.get("dischargeDisposition"))
    period = r.get("period")
    return EncounterRecord(
        "Encounter",  # resource_type
        resource_id,  # id
        _patient_of(_ref(r.get("subject"), resolve)),  # patient_id
        src,
        last_updated,
        version_id,
        status,
        class_code,
        _codes_of(_concepts(r, "type")),  # type_codes
        _period(period) if period is not None else None,  # when
        tuple(target for _rank, target in ranked if target),  # diagnoses
        provider or service_provider,  # provider_ref
        location,  # location_ref
        service_provider,  # service_provider_ref
        discharge,  # discharge_codes
    )


def _observation(r: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> ObservationRecord:
    last_updated, version_id = _meta(r)
    status = r.get("status")
    code = r.get("code")
    if type(status) is not str or type(code) is not dict:  # both required
        raise _Unexpected
    value_quantity = r.get("valueQuantity")
    value_concept = r.get("valueCodeableConcept")
    value_int = _int(r.get("valueInteger"))
    value_string = _str(r.get("valueString"))
    value_bool = _bool(r.get("valueBoolean"))
    absent = r.get("dataAbsentReason")
    if absent is not None:
        _codes(absent)  # checked; only its presence is read
    components = []
    for component in _list(r, "component"):
        if type(component) is not dict or type(component.get("code")) is not dict:
            raise _Unexpected
        component_quantity = component.get("valueQuantity")
        component_absent = component.get("dataAbsentReason")
        if component_absent is not None:
            _codes(component_absent)
        components.append(
            ComponentRecord(
                _codes(component["code"]),
                _quantity(component_quantity) if component_quantity is not None else None,
                component_absent is not None,  # absent
            )
        )
    issued = _str(r.get("issued"))
    encounter = r.get("encounter")
    return ObservationRecord(
        "Observation",  # resource_type
        resource_id,  # id
        _patient_of(_ref(r.get("subject"), resolve)),  # patient_id
        src,
        last_updated,
        version_id,
        status,
        _categories(_concepts(r, "category")),  # categories
        _codes(code),  # codes
        _ref(encounter, resolve) if encounter is not None else None,  # encounter_ref
        _when_of(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant"),  # when
        _quantity(value_quantity) if value_quantity is not None else None,  # quantity
        _codes(value_concept) if value_concept is not None else _NO_CODES,  # value_codes
        value_int,
        value_string,
        value_bool,
        absent is not None,  # absent
        tuple(components),
        _when(issued) if issued else None,  # issued
        _reason_extension_codes(r),  # reason_codes
    )


def _condition(r: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> ConditionRecord:
    last_updated, version_id = _meta(r)
    subject = r.get("subject")
    if type(subject) is not dict:  # required
        raise _Unexpected
    recorded = _str(r.get("recordedDate"))
    return ConditionRecord(
        "Condition",  # resource_type
        resource_id,  # id
        _patient_of(_ref(subject, resolve)),  # patient_id
        src,
        last_updated,
        version_id,
        _codes(r.get("code")),  # codes
        _categories(_concepts(r, "category")),  # categories
        _first_code(r.get("clinicalStatus")),  # clinical_status
        _first_code(r.get("verificationStatus")),  # verification_status
        _when_of(r, "onsetDateTime", "onsetPeriod"),  # onset
        _when_of(r, "abatementDateTime", "abatementPeriod"),  # abatement
        _when(recorded) if recorded else None,  # recorded
        _ref(r.get("encounter"), resolve),  # encounter_ref
    )


_EVENT_CODE_ELEMENTS = ("code", "vaccineCode", "medicationCodeableConcept", "codeCodeableConcept", "type")


def _event(r: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> EventRecord:
    resource_type: str = r["resourceType"]
    # A MedicationRequest's supply period reads dosage and dispense details: left to the pydantic path,
    # as are those elements on any other type (they are rare, and checking them here is not worth it).
    if _list(r, "dosageInstruction") or r.get("dispenseRequest") is not None:
        raise _Unexpected
    last_updated, version_id = _meta(r)
    codes = None
    for element in _EVENT_CODE_ELEMENTS:  # the first one present, all of them checked
        concept = r.get(element)
        if concept is not None:
            element_codes = _codes(concept)
            if codes is None:
                codes = element_codes
    if codes is None:
        codes = _NO_CODES
    category = _concepts(r, "category")
    if not codes and resource_type in ("CarePlan", "Consent"):
        codes = _codes_of(category)
    subject = _dict(r.get("subject"))
    patient = _dict(r.get("patient"))
    subject_ref = _ref(subject, resolve)
    patient_ref = _ref(patient, resolve)
    encounter = _dict(r.get("encounter"))
    encounter_ref = _ref(encounter, resolve)
    if encounter is None:
        context = r.get("context")
        if type(context) is dict:  # R4's MedicationAdministration.context is the encounter
            encounter_ref = _ref(context, resolve)
    authored_on = _str(r.get("authoredOn"))
    authored = _when(authored_on) if authored_on else None
    performed = _when_of(r, "performedDateTime", "performedPeriod")
    occurrence = _when_of(r, "occurrenceDateTime", "occurrencePeriod")
    date_time = _str(r.get("dateTime"))
    date = _str(r.get("date"))
    period = r.get("period")
    period_when = _period(period)
    when: When | None
    if resource_type in REQUEST_TYPES and authored is not None:
        when = authored  # QI-Core times orders by when they were authored
    else:
        when = (
            performed
            or occurrence
            or authored
            or (_when(date_time) if date_time else None)
            or (_when(date) if date else None)
            or period_when
        )
    reasons = _codes(r.get("statusReason"))
    reason_codes = _concepts(r, "reasonCode")
    if reason_codes or "extension" in r:
        more = set(reasons)
        for concept in reason_codes:
            more.update(_codes(concept))
        more.update(_reason_extension_codes(r))
        reasons = frozenset(more)
    do_not_perform = bool(_bool(r.get("doNotPerform")))
    for url, _, value in _extensions(r, "modifierExtension"):
        if value is True and (url or "").endswith(DO_NOT_PERFORM_EXTENSION):
            do_not_perform = True
    return EventRecord(
        resource_type,
        resource_id,  # id
        _patient_of(subject_ref if subject is not None else patient_ref),  # patient_id: subject, else patient
        src,
        last_updated,
        version_id,
        _str(r.get("status")) or "",  # status
        codes,
        when,
        encounter_ref,
        reasons,  # reason_codes
        _categories(category),  # categories
        _str(r.get("intent")),  # intent
        do_not_perform,
        authored,
        None,  # supply: with neither dosage nor dispense, medication_request_period has none
    )


def _claim(r: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> ClaimRecord:
    last_updated, version_id = _meta(r)
    patient = r.get("patient")
    if type(patient) is not dict:  # required
        raise _Unexpected
    encounters = set()
    for item in _list(r, "item"):
        if type(item) is not dict:
            raise _Unexpected
        for reference in _list(item, "encounter"):
            if type(reference) is not dict:  # a list of References: null entries are rejected
                raise _Unexpected
            ref = _ref(reference, resolve)
            if ref:
                encounters.add(ref)
    insurance = []
    for index, entry in enumerate(_list(r, "insurance"), start=1):
        if type(entry) is not dict:
            raise _Unexpected
        sequence = _int(entry.get("sequence"))
        focal = _bool(entry.get("focal"))
        coverage = _ref(entry.get("coverage"), resolve)
        if coverage:
            insurance.append((sequence or index, bool(focal), coverage))
    diagnoses = []
    for index, entry in enumerate(_list(r, "diagnosis"), start=1):
        if type(entry) is not dict:
            raise _Unexpected
        sequence = _int(entry.get("sequence"))
        _ref(entry.get("diagnosisReference"), resolve)
        codes = _codes(entry.get("diagnosisCodeableConcept"))
        if codes:
            diagnoses.append((sequence or index, min(codes)))  # slim: the first of the sorted codes
    return ClaimRecord(
        "Claim",  # resource_type
        resource_id,  # id
        _patient_of(_ref(patient, resolve)),  # patient_id
        src,
        last_updated,
        version_id,
        _str(r.get("status")) or "",  # status
        frozenset(encounters),  # encounter_refs
        tuple(insurance),
        _ref(r.get("provider"), resolve),  # provider_ref
        tuple(diagnoses),  # diagnosis_codes
    )


_DIRECT: dict[str, Callable[[dict[str, Any], Src, Resolver, str], ResourceRecord]] = {
    "Encounter": _encounter,
    "Observation": _observation,
    "Condition": _condition,
    "Procedure": _event,
    "Immunization": _event,
    "MedicationRequest": _event,
    "MedicationAdministration": _event,
    "ServiceRequest": _event,
    "DocumentReference": _event,
    "CarePlan": _event,
    "Consent": _event,
    "DeviceRequest": _event,
    "Claim": _claim,
}
