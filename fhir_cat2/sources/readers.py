"""Readers of FHIR elements straight from parsed JSON, used by the readers ``fieldmap.py`` builds.

Each reads one element exactly as its validation model in ``fhir_models.py`` declares it, and accepts only
what it reads the same way: exact JSON types, no coercion (a number in a string, 1.0 for an integer, null
for a list). Anything else raises ``Unexpected``, and the resource goes to pydantic, which names the field.
Absent or null is None for scalars and objects; lists may be absent, not null.

They are the hot loop of ingest, so they are written for CPython: inline type checks, shared immutable
results for repeated values (see the caches), and nothing computed twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from ..errors import InputError
from ..terminology import normalise_system
from .records import Code, QuantityValue, When
from .values import (
    DO_NOT_PERFORM_EXTENSION,
    REASON_EXTENSIONS,
    RECORDED_EXTENSION,
    Resolver,
    parse_when,
    patient_id_of,
)


class Unexpected(Exception):
    """This input is not read exactly as its validation model would read it: let pydantic decide."""


# --------------------------------------------------------------------------------------------- caches
# The same codes, categories and timestamps come back in resource after resource (an encounter's time is
# shared by its observations and procedures). Sharing one immutable frozenset/When per distinct value saves
# building it again and keeps one copy in memory. Each cache is cleared when full, so it stays small
# whatever the input; input arrives patient by patient, so the values in use are the recent ones.

_CACHE_SIZE = 8192
NO_CODES: frozenset[Code] = frozenset()
NO_CATEGORIES: frozenset[str] = frozenset()
_code_sets: dict[tuple[str | None, ...], frozenset[Code]] = {}
_category_sets: dict[frozenset[Code], frozenset[str]] = {}
_whens: dict[str, When] = {}
_periods: dict[tuple[str | None, str | None], When | None] = {}
_patient_ids: dict[str, str | None] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


ABSENT: tuple[()] = ()
"""What ``list_at`` gives for an absent list: iterates like an empty one, and is no JSON value."""
EMPTY: dict[str, Any] = {}
"""What ``child`` gives for an absent object: every element of it is absent. Never written to."""


# --------------------------------------------------------------------------------------------- scalars


def text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise Unexpected


def required_text(value: Any) -> str:
    if type(value) is str:
        return value
    raise Unexpected


def boolean(value: Any) -> bool | None:
    if value is None or type(value) is bool:
        return value
    raise Unexpected


def any_given(*values: Any) -> bool:
    """Whether any of these elements is there (not absent, not null), whatever it holds: an Observation's
    value of a type no rule reads by its content (valuePeriod, valueRange, valueRatio, valueSampledData,
    valueTime, valueDateTime), which the CQL's ``value is not null`` still counts."""
    return any(value is not None for value in values)


def integer(value: Any) -> int | None:
    if value is None or type(value) is int:  # not bool (a subclass), which pydantic would coerce
        return value
    raise Unexpected


def number(value: Any) -> float | None:
    if type(value) is float or value is None:
        return value
    if type(value) is int:  # not bool, nor a number in a string: pydantic coerces those
        return float(value)  # as pydantic's float does
    raise Unexpected


def child(element: dict[str, Any], key: str) -> dict[str, Any]:
    """An object inside ``element``; an absent one reads as empty."""
    value = element.get(key)
    if type(value) is dict:
        return value
    if value is None:
        return EMPTY
    raise Unexpected


def required_object(value: Any) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise Unexpected


def object_or_none(value: Any) -> dict[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    raise Unexpected


def list_at(element: dict[str, Any], key: str) -> list[Any] | tuple[()]:
    value = element.get(key, ABSENT)
    if type(value) is list or value is ABSENT:
        return value
    raise Unexpected  # null, or not a list


def objects_at(element: dict[str, Any], key: str) -> list[Any] | tuple[()]:
    """A list of objects (CodeableConcepts, backbone elements): pydantic rejects a null entry."""
    values = list_at(element, key)
    for value in values:
        if type(value) is not dict:
            raise Unexpected
    return values


def texts_at(element: dict[str, Any], key: str) -> list[Any] | tuple[()]:
    values = list_at(element, key)
    for value in values:
        if type(value) is not str:
            raise Unexpected
    return values


def present(value: Any) -> bool:
    """A CodeableConcept (dataAbsentReason) that is there, whatever it says."""
    if value is None:
        return False
    codes(value)  # checked; only its presence is read
    return True


# --------------------------------------------------------------------------------------------- codes


def codes(concept: Any) -> frozenset[Code]:
    """A CodeableConcept's (normalised system, code) pairs."""
    if concept is None:
        return NO_CODES
    if type(concept) is not dict:
        raise Unexpected
    concept_text = concept.get("text")
    if concept_text is not None and type(concept_text) is not str:  # inline checks: the hottest call
        raise Unexpected
    codings = concept.get("coding", ABSENT)
    if type(codings) is not list:
        if codings is ABSENT:
            return NO_CODES
        raise Unexpected
    key: tuple[str | None, ...]
    if len(codings) == 1:  # the common case: the cache key is its (system, code)
        coding = codings[0]
        if type(coding) is not dict:
            raise Unexpected
        system = coding.get("system")
        code = coding.get("code")
        if (system is not None and type(system) is not str) or (code is not None and type(code) is not str):
            raise Unexpected
        if not code:
            return NO_CODES
        key = (system, code)
    else:
        raw: list[str | None] = []  # system, code, system, code...
        for coding in codings:
            if type(coding) is not dict:
                raise Unexpected
            system = coding.get("system")
            code = coding.get("code")
            if (system is not None and type(system) is not str) or (
                code is not None and type(code) is not str
            ):
                raise Unexpected
            if code:
                raw.append(system)
                raw.append(code)
        key = tuple(raw)
    found = _code_sets.get(key)
    if found is None:
        found = frozenset((normalise_system(key[i]), key[i + 1]) for i in range(0, len(key), 2))  # type: ignore[misc]
        _remember(_code_sets, key, found)
    return found


def codes_of(concepts: list[Any] | tuple[()]) -> frozenset[Code]:
    """The codes of a list of CodeableConcepts (entries checked by ``objects_at``)."""
    if len(concepts) == 1:
        return codes(concepts[0])
    if not concepts:
        return NO_CODES
    out: set[Code] = set()
    for concept in concepts:
        out.update(codes(concept))
    return frozenset(out)


def categories(concepts: list[Any] | tuple[()]) -> frozenset[str]:
    """The codes of a list of CodeableConcepts, systems aside."""
    if not concepts:
        return NO_CATEGORIES
    found = codes_of(concepts)
    out = _category_sets.get(found)
    if out is None:
        out = frozenset(code for _system, code in found)
        _remember(_category_sets, found, out)
    return out


def first_code(concept: Any) -> str | None:
    """The code of the first coding that has one."""
    codes(concept)  # checks it
    if concept is None:
        return None
    for coding in concept.get("coding") or ():
        if coding.get("code"):
            return coding["code"]  # type: ignore[no-any-return]
    return None


def coding_code(coding: Any) -> str | None:
    """The code of a Coding."""
    if coding is None:
        return None
    if type(coding) is not dict:
        raise Unexpected
    text(coding.get("system"))
    return text(coding.get("code"))


def extension_codes(extensions: list[Any] | tuple[()], suffixes: tuple[str, ...]) -> frozenset[Code]:
    """The valueCodeableConcept codes of the extensions (a list of objects) whose url ends in a suffix."""
    if not extensions:
        return NO_CODES
    out: set[Code] = set()
    for url, found, _value in extension_values(extensions):
        if url and url.endswith(suffixes):
            out.update(found)
    return frozenset(out)


def extension_values(
    extensions: list[Any] | tuple[()],
) -> list[tuple[str | None, frozenset[Code], bool | None]]:
    """(url, valueCodeableConcept codes, valueBoolean) of each Extension (a list of objects); its
    valueDateTime is checked as the model reads it (``recorded``)."""
    out = []
    for extension in extensions:
        text(extension.get("valueDateTime"))
        out.append(
            (
                text(extension.get("url")),
                codes(extension.get("valueCodeableConcept")),
                boolean(extension.get("valueBoolean")),
            )
        )
    return out


def recorded(extensions: list[Any] | tuple[()]) -> When | None:
    """The QI-Core recorded extension's valueDateTime (ProcedureNotDone.recorded)."""
    for extension in extensions:
        url = text(extension.get("url"))
        value = text(extension.get("valueDateTime"))
        if url and url.endswith(RECORDED_EXTENSION) and value:
            return when(value, "extension.valueDateTime")
    return None


def reasons(
    status_reason: Any, reason_codes: list[Any] | tuple[()], extensions: list[Any] | tuple[()]
) -> frozenset[Code]:
    """Why it was (not) done: statusReason, reasonCode and the QI-Core reason extensions, together."""
    found = NO_CODES if status_reason is None else codes(status_reason)
    if reason_codes or extensions:
        more = set(found)
        more.update(codes_of(reason_codes))
        more.update(extension_codes(extensions, REASON_EXTENSIONS))
        found = frozenset(more)
    return found


def listed_reasons(
    status_reasons: list[Any] | tuple[()],
    reason_codes: list[Any] | tuple[()],
    extensions: list[Any] | tuple[()],
) -> frozenset[Code]:
    """``reasons`` where statusReason is a list (MedicationAdministration)."""
    return reasons(None, [*status_reasons, *reason_codes], extensions)


def do_not_perform(flag: Any, modifier_extensions: list[Any] | tuple[()]) -> bool:
    """doNotPerform, or the QI-Core doNotPerform modifier extension (DeviceRequest)."""
    found = flag is not None and bool(boolean(flag))
    if modifier_extensions:
        for url, _codes, value in extension_values(modifier_extensions):
            if value is True and (url or "").endswith(DO_NOT_PERFORM_EXTENSION):
                found = True
    return found


def quantity(value: Any) -> QuantityValue | None:
    """A Quantity with a value, as (value, code or unit, comparator)."""
    if value is None:
        return None
    if type(value) is not dict:
        raise Unexpected
    unit = text(value.get("unit"))
    code = text(value.get("code"))
    comparator = text(value.get("comparator"))
    text(value.get("system"))  # checked; not read
    amount = number(value.get("value"))
    if amount is None:
        return None
    return QuantityValue(amount, code or unit, comparator)


# --------------------------------------------------------------------------------------------- refs


def ref(reference: Any, resolve: Resolver) -> str | None:
    """A Reference, resolved: None when it has no reference."""
    if reference is None:
        return None
    if type(reference) is not dict:
        raise Unexpected
    target = reference.get("reference")
    display = reference.get("display")
    if (target is not None and type(target) is not str) or (display is not None and type(display) is not str):
        raise Unexpected
    return resolve(target) if target else None


def patient_of(reference: str | None) -> str | None:
    """patient_id_of, once per distinct reference."""
    if not reference:
        return None
    patient_id = _patient_ids.get(reference, ABSENT)
    if patient_id is ABSENT:
        patient_id = patient_id_of(reference)
        _remember(_patient_ids, reference, patient_id)
    return patient_id  # type: ignore[return-value]


def first_ref(elements: list[Any] | tuple[()], key: str, resolve: Resolver) -> str | None:
    """The first Reference at ``key`` of a list of objects that refers to something, all of them checked."""
    found = None
    for element in elements:
        target = ref(element.get(key), resolve)
        if found is None and target:
            found = target
    return found


# --------------------------------------------------------------------------------------------- times


def when(value: Any, field: str) -> When | None:
    """A date or dateTime (parse_when, once per distinct value). The error names ``field``."""
    if not value:
        if value is None or value == "":
            return None
        raise Unexpected
    if type(value) is not str:
        raise Unexpected
    found = _whens.get(value)
    if found is None:
        found = parse_when(value, field)
        _remember(_whens, value, found)
    return found


def day(value: Any, field: str) -> date | None:
    found = when(value, field)
    return found.start_day if found is not None else None


def period(value: Any, field: str) -> When | None:
    """A Period: its first and last days; an end before its start is an error naming ``field``."""
    if value is None:
        return None
    if type(value) is not dict:
        raise Unexpected
    start = text(value.get("start"))
    end = text(value.get("end"))
    key = (start, end)
    found = _periods.get(key, ABSENT)
    if found is not ABSENT:
        return found  # type: ignore[return-value]
    start_when = when(start, f"{field}.start") if start else None
    end_when = when(end, f"{field}.end") if end else None
    if start_when and end_when:
        if end_when.end_day < start_when.start_day:
            raise _end_before_start(field, start, end)
        # A date-only end covers its whole day: no end instant (comparisons fall back to the day).
        end_instant = end_when.instant if end and len(end) > 10 else None
        found = When(start_when.start_day, end_when.end_day, start_when.instant, end_instant)
    elif start_when:
        found = start_when
    elif end_when:
        found = When(end_when.start_day, end_when.end_day, end_when.instant)
    else:
        found = None
    _remember(_periods, key, found)
    return found


def _end_before_start(field: str, start: str | None, end: str | None) -> InputError:
    return InputError(f"{field}: end {end} is before start {start}")


def first_value(*choices: Any) -> Any:
    """The first reading that is not None (every choice was read, so checked, before)."""
    for choice in choices:
        if choice is not None:
            return choice
    return None


def first_present(default: Any, *pairs: Any) -> Any:
    """``pairs`` is (raw element, its reading), ...: the reading of the first element present."""
    for i in range(0, len(pairs), 2):
        if pairs[i] is not None:
            return pairs[i + 1]
    return default


def either(primary: Any, fallback: Any) -> Any:
    """``primary`` unless it is empty."""
    return primary if primary else fallback


# ------------------------------------------------------------------------------ backbone elements
# The few record fields that need more than one element read together.


def deceased(flag: bool | None, day_of_death: date | None) -> bool:
    return bool(flag) or day_of_death is not None


def ranked_diagnoses(diagnoses: list[Any] | tuple[()], resolve: Resolver) -> tuple[str, ...]:
    """Encounter.diagnosis conditions that refer to something, in rank order (unranked last, stable)."""
    if not diagnoses:
        return ()
    ranked = []
    for diagnosis in diagnoses:
        condition = diagnosis.get("condition")
        rank = integer(diagnosis.get("rank"))
        target = ref(condition, resolve)
        if condition is not None and condition.get("reference"):
            ranked.append((rank if rank is not None else 1_000_000, target))
    ranked.sort(key=lambda pair: pair[0])
    return tuple(target for _rank, target in ranked if target)


def coding_displays(concept: Any) -> frozenset[tuple[str, str, str]]:
    """(normalised system, code, display) of a CodeableConcept's codings with a display and no version."""
    if concept is None:
        return frozenset()
    found = set()
    if type(concept) is not dict:
        raise Unexpected
    for coding in objects_at(concept, "coding"):
        system, code = text(coding.get("system")), text(coding.get("code"))
        display, version = text(coding.get("display")), text(coding.get("version"))
        if code is not None and display is not None and version is None:
            found.add((normalise_system(system), code, display))
    return frozenset(found)


def references(references: list[Any] | tuple[()], resolve: Resolver) -> tuple[str, ...]:
    """The targets of a list of References (Observation.partOf, basedOn), resolved, in order; those that
    refer to nothing left out."""
    found = []
    for reference in references:
        target = ref(reference, resolve)
        if target:
            found.append(target)
    return tuple(found)


_BILLING = ("http://terminology.hl7.org/CodeSystem/diagnosis-role", "billing")


def principal_diagnosis(diagnoses: list[Any] | tuple[()], resolve: Resolver) -> str | None:
    """The Encounter.diagnosis condition ranked 1 with use billing, as QICoreCommon principalDiagnosis()
    reads it (``D.rank = 1 and D.use ~ "Billing"``); the first such when there are several (the CQL's
    singleton from would fail)."""
    for diagnosis in diagnoses:
        use = codes(diagnosis.get("use"))  # checked on every diagnosis
        if integer(diagnosis.get("rank")) != 1 or _BILLING not in use:
            continue
        target = ref(diagnosis.get("condition"), resolve)
        if target:
            return target
    return None


def claim_encounters(items: list[Any] | tuple[()], resolve: Resolver) -> frozenset[str]:
    """The encounters Claim.item[].encounter[] refer to."""
    found = set()
    for item in items:
        for reference in objects_at(item, "encounter"):
            target = ref(reference, resolve)
            if target:
                found.add(target)
    return frozenset(found)


def claim_insurance(entries: list[Any] | tuple[()], resolve: Resolver) -> tuple[tuple[int, bool, str], ...]:
    """(sequence, or position from 1; focal; coverage) of each Claim.insurance that names a coverage."""
    found = []
    for index, entry in enumerate(entries, start=1):
        sequence = integer(entry.get("sequence"))
        focal = boolean(entry.get("focal"))
        coverage = ref(entry.get("coverage"), resolve)
        if coverage:
            found.append((sequence or index, bool(focal), coverage))
    return tuple(found)


def claim_diagnoses(entries: list[Any] | tuple[()], resolve: Resolver) -> tuple[tuple[int, Code], ...]:
    """(sequence, or position from 1; the first of its sorted codes) of each coded Claim.diagnosis."""
    found = []
    for index, entry in enumerate(entries, start=1):
        sequence = integer(entry.get("sequence"))
        ref(entry.get("diagnosisReference"), resolve)  # checked; not read
        diagnosis_codes = codes(entry.get("diagnosisCodeableConcept"))
        if diagnosis_codes:
            found.append((sequence or index, min(diagnosis_codes)))
    return tuple(found)


def encounter_or_context(encounter: Any, context: Any, resolve: Resolver) -> str | None:
    """The encounter, else R4 MedicationAdministration.context (a Reference there; ignored when it is
    another type's backbone element, or anything but a reference)."""
    if encounter is not None:
        return ref(encounter, resolve)
    if type(context) is dict:
        target = context.get("reference")
        if type(target) is str and target:
            return resolve(target)
    return None


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
# A supply duration in days, as CQL ``convert ... to days`` reads it: UCUM, whose month and year are the
# Julian ones (mo = 30.4375 d, a = 365.25 d), unlike ToDaily's 30 and 365 above (fqm-execution agrees).
_DURATION_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "h": 1 / 24,
    "mo": 30.4375,
    "a": 365.25,
}


def _period_shape(value: Any) -> dict[str, Any] | None:
    """A Period's types, its dates left unparsed."""
    found = object_or_none(value)
    if found is not None:
        text(found.get("start"))
        text(found.get("end"))
    return found


def _dosage(dosage: dict[str, Any]) -> tuple[dict[str, Any], list[Any] | tuple[()]]:
    """(Timing.repeat, doseAndRate) of a Dosage, every element the validation model declares checked."""
    repeat = child(child(dosage, "timing"), "repeat")
    _period_shape(repeat.get("boundsPeriod"))
    integer(repeat.get("frequency"))
    integer(repeat.get("frequencyMax"))
    number(repeat.get("period"))
    text(repeat.get("periodUnit"))
    texts_at(repeat, "timeOfDay")
    doses = objects_at(dosage, "doseAndRate")
    for dose in doses:
        quantity(dose.get("doseQuantity"))
        dose_range = child(dose, "doseRange")
        quantity(dose_range.get("low"))
        quantity(dose_range.get("high"))
    return repeat, doses


def allergy_period(onset: When | None, last_occurrence: When | None) -> When | None:
    """An AllergyIntolerance as the AHA measures read it: ``Interval[start of onset, lastOccurrence]``, open
    (``date.max``) without a last occurrence (CQL: a closed null bound is the maximum); None without an
    onset."""
    if onset is None:
        return None
    if last_occurrence is None:
        return When(onset.start_day, date.max, onset.instant, None)
    if last_occurrence.end_day < onset.start_day:
        return None
    return When(onset.start_day, last_occurrence.end_day, onset.instant, last_occurrence.instant)


def dosage_periods(dosages: list[Any] | tuple[()]) -> tuple[When, ...]:
    """Every dosage's bounds period of a MedicationRequest, in dosage order (``timing_of: dosages``: CMS347's
    ``exists (dosageInstruction.timing T where T.repeat.bounds.toInterval() overlaps ...)``); a period
    without an end is open (CQL: a closed null bound is the maximum), ``date.max``. Bounds without a start
    (an unknown start: no relation holds) are left out."""
    periods: list[When] = []
    for dosage in dosages:
        repeat, _ = _dosage(dosage)
        bounds_period = repeat.get("boundsPeriod")
        if not bounds_period or not bounds_period.get("start"):
            continue
        found = period(bounds_period, "boundsPeriod")
        if found is not None:
            end = found.end_day if bounds_period.get("end") else date.max
            periods.append(When(found.start_day, end, found.instant, found.end_instant))
    return tuple(periods)


def first_dosage_period(dosages: list[Any] | tuple[()]) -> When | None:
    """The first of a MedicationRequest's dosage bounds periods once collapsed, as the AHA measures read
    them (``First(collapse(dosageInstruction.timing.repeat.bounds) sort by start)``); a period without an
    end is open (CQL: a closed null bound is the maximum), ``date.max``. Bounds without a start are left
    out."""
    periods = sorted(dosage_periods(dosages), key=lambda w: w.start_day)
    if not periods:
        return None
    first = periods[0]
    for later in periods[1:]:  # collapse: a period starting by the first's end merges into it
        if later.start_day > first.end_day:
            break
        if later.end_day > first.end_day:
            first = When(first.start_day, later.end_day, first.instant, later.end_instant)
    return first


def first_dosage_event(dosages: list[Any] | tuple[()]) -> When | None:
    """The earliest of a MedicationRequest's dosage timing events (CMS645 reads the first event before the
    bounds: ``First(dosageInstruction.timing dt return First(dt.event sort ascending) sort ascending)``);
    None without events."""
    first: When | None = None
    for dosage in dosages:
        for value in texts_at(child(dosage, "timing"), "event"):
            found = when(value, "dosageInstruction.timing.event")
            if found is not None and (first is None or _event_key(found) < _event_key(first)):
                first = found
    return first


def _event_key(found: When) -> tuple[date, datetime]:
    return (found.start_day, found.instant or datetime.combine(found.start_day, time.min, UTC))


def medication_request_period(
    dosages: list[Any] | tuple[()], dispense_request: Any, authored: When | None
) -> When | None:
    """The days a MedicationRequest's supply covers, as CQL medicationRequestPeriod() computes it.

    Start: the dosage bounds start, else authoredOn, else the dispense validity start. Length: the days
    supplied (``medication_request_days``). Without a length, the bounds end closes it; otherwise there is
    no period (CQL returns null).
    """
    read = [_dosage(dosage) for dosage in dosages]
    dispense = object_or_none(dispense_request) or EMPTY
    validity_period = _period_shape(dispense.get("validityPeriod"))
    if not dosages and not dispense:
        return None
    repeat = read[0][0] if len(read) == 1 else EMPTY
    bounds_period = repeat.get("boundsPeriod")
    bounds = period(bounds_period, "boundsPeriod")
    validity = period(validity_period, "dispenseRequest.validityPeriod")
    if bounds is not None and bounds_period and bounds_period.get("start"):
        start = bounds.start_day
    elif authored is not None:
        start = authored.start_day
    elif validity is not None and validity_period is not None and validity_period.get("start"):
        start = validity.start_day
    else:
        return None
    days = _days_supplied(read, dispense)
    if days is not None:
        try:  # CQL: start + (total - 1) days
            end = date.fromordinal(start.toordinal() + max(int(days - 1), 0))
        except (OverflowError, ValueError):
            raise InputError("dispenseRequest: the supply it describes ends past the year 9999") from None
        return When(start, end)
    if bounds is not None and bounds_period and bounds_period.get("end"):
        return When(start, bounds.end_day)
    return None


def medication_request_days(dosages: list[Any] | tuple[()], dispense_request: Any) -> float | None:
    """The days a MedicationRequest supplies, refills included, as the CQL computes them
    (CumulativeMedicationDuration's totalDaysSupplied, CMS156 MedicationRequestPeriodInDays): the expected
    supply duration in days, else quantity / (dose x doses per day: from the frequency and period, else the
    number of times of day), times (1 + refills); None when neither can be told."""
    read = [_dosage(dosage) for dosage in dosages]
    return _days_supplied(read, object_or_none(dispense_request) or EMPTY)


def _days_supplied(
    read: list[tuple[dict[str, Any], list[Any] | tuple[()]]], dispense: dict[str, Any]
) -> float | None:
    refills = integer(dispense.get("numberOfRepeatsAllowed"))
    dispensed = quantity(dispense.get("quantity"))
    duration = child(dispense, "expectedSupplyDuration")
    duration_value = number(duration.get("value"))
    duration_code = text(duration.get("code"))
    duration_unit = text(duration.get("unit"))
    repeat, doses = read[0] if len(read) == 1 else (EMPTY, ABSENT)
    days: float | None = None
    if duration_value is not None:
        factor = _DURATION_DAYS.get(duration_code or duration_unit or "d")
        if factor is not None:
            days = duration_value * factor
    if days is None and dispensed is not None and len(read) == 1:
        dose = None
        if len(doses) == 1:
            dose_quantity = doses[0].get("doseQuantity")
            if dose_quantity is not None:
                dose = number(dose_quantity.get("value"))
            else:
                dose = number(child(child(doses[0], "doseRange"), "high").get("value"))
        # Coalesce(ToDaily(frequency, period), Count(timeOfDay), 1.0): Count of no times is 0, not null, so
        # the 1.0 is never reached; without a frequency and period or times of day the days are unknown
        # (a division by zero is null), as fqm-execution computes them.
        per_day = 0.0
        frequency = integer(repeat.get("frequencyMax"))
        if frequency is None:
            frequency = integer(repeat.get("frequency"))
        every = number(repeat.get("period"))
        unit = repeat.get("periodUnit")
        if frequency is not None and every and unit in _PERIOD_DAYS:
            per_day = frequency / (every * _PERIOD_DAYS[unit])
        elif repeat.get("timeOfDay"):
            per_day = float(len(repeat["timeOfDay"]))
        if dose and per_day:
            days = dispensed.value / (dose * per_day)
    if days is None:
        return None
    return days * (1 + (refills or 0))


def medication_dispense_period(
    dosages: list[Any] | tuple[()],
    dispensed: Any,
    days_supply: Any,
    handed_over: When | None,
    prepared: When | None,
) -> When | None:
    """The days a MedicationDispense's supply covers, as CQL medicationDispensePeriod() computes it
    (CumulativeMedicationDuration 4.1.000): from the day it was handed over, else prepared, for its
    daysSupply in days, else quantity / (dose x doses per day) days (no refills: a dispense is one fill);
    None without a start or a length."""
    start = handed_over or prepared
    read = [_dosage(dosage) for dosage in dosages]
    for dosage in dosages:
        texts_at(child(dosage, "timing"), "event")  # checked; not read
    quantity(days_supply)  # checked: every element of the Quantity
    fill = {"quantity": object_or_none(dispensed), "expectedSupplyDuration": object_or_none(days_supply)}
    days = _days_supplied(read, {k: v for k, v in fill.items() if v is not None})
    if start is None or days is None:
        return None
    try:  # CQL: start + (total - 1) days
        end = date.fromordinal(start.start_day.toordinal() + max(int(days - 1), 0))
    except (OverflowError, ValueError):
        raise InputError("daysSupply: the supply it describes ends past the year 9999") from None
    return When(start.start_day, end)


def refills_allowed(dispense_request: Any) -> int | None:
    """A MedicationRequest's dispenseRequest.numberOfRepeatsAllowed."""
    return integer((object_or_none(dispense_request) or EMPTY).get("numberOfRepeatsAllowed"))


def dispensed_quantity(dispense_request: Any) -> QuantityValue | None:
    """A MedicationRequest's dispenseRequest.quantity (value, code or unit)."""
    return quantity((object_or_none(dispense_request) or EMPTY).get("quantity"))
