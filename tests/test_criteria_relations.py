"""Criteria the heart-failure measures added (CMS144, CMS135, CMS145): strict ``starts_before``,
``overlaps_after``, ``verification_statuses``, ``timing_of: recorded`` and ``timing_of: dosage`` (the first
collapsed dosage bounds period of a MedicationRequest); CMS347's: ``timing_of: dosages`` (any dosage
bounds period), ``timing_of: onset`` (an AllergyIntolerance's onset alone), AdverseEvent (coded by event,
timed by recordedDate) and value tests with ``units``; and CMS645's ``timing_of: dosage-start`` (its first
timing event, else that period's start); each judged against a visit bound as ``encounter``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.rules.criteria_schema import ExistsCriterion

from .conftest import ICD10, RXNORM, SNOMED, condition, encounter, procedure, request
from .support.tables import numerator_met, one_measure_table

VISIT = "2025-03-04T09:00:00Z"
VISIT_END = "2025-03-04T09:30:00Z"

NUMERATOR = """\
exists:
  resource: Encounter
  label: Office visit with the fact under test
  codes: ["cpt#99213"]
  during: period
  as: encounter
  where:
    exists: {fact}
"""


def met(tmp_path: Path, fact: str, *resources: dict[str, Any]) -> bool:
    table = one_measure_table(NUMERATOR.format(fact=fact))
    return numerator_met(tmp_path, table, *resources, visit=encounter("e1", VISIT, end=VISIT_END))


PACER = "{resource: Procedure, codes: ['snomed#1279006'], starts_before: encounter.end, precision: instant}"


@pytest.mark.parametrize(
    ("when", "expected"),
    [("2025-03-04T09:29:00Z", True), ("2025-03-04T09:30:00Z", False)],
    ids=["a-minute-before-the-end", "at-the-end"],
)
def test_starts_before_is_strict(tmp_path, when, expected):
    assert met(tmp_path, PACER, procedure("pacer", "1279006", when)) is expected


ALLERGY = "{resource: Condition, codes: ['snomed#293962009'], overlaps_after: encounter}"


@pytest.mark.parametrize(
    ("status", "abatement", "expected"),
    [("active", None, True), ("resolved", "2025-03-05", True), ("resolved", "2025-03-04", False)],
    ids=["ongoing", "ends-the-day-after", "ends-that-day"],
)
def test_overlaps_after_needs_an_end_after_the_window(tmp_path, status, abatement, expected):
    allergy = condition("a", "293962009", system=SNOMED, status=status, abatement=abatement)
    assert met(tmp_path, ALLERGY, allergy) is expected


CONFIRMED = (
    "{resource: Condition, codes: ['icd10cm#I50.1'], verification_statuses: [confirmed], overlaps: encounter}"
)
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.mark.parametrize(
    ("verification", "expected"), [("confirmed", True), ("provisional", False), (None, False)]
)
def test_verification_statuses(tmp_path, verification, expected):
    hf = condition("hf", "I50.1", system=ICD10)
    if verification:
        hf["verificationStatus"] = {"coding": [{"system": VER, "code": verification}]}
    assert met(tmp_path, CONFIRMED, hf) is expected


RECORDED = (
    "{resource: Condition, codes: ['snomed#764680009'], timing_of: recorded, starts_before: encounter.end,"
    " precision: instant}"
)


@pytest.mark.parametrize(
    ("recorded", "onset", "expected"),
    [("2025-01-15", "2025-06-01", True), (None, "2025-01-15", True), ("2025-06-01", "2025-01-15", False)],
    ids=["recorded-before", "no-recorded-onset-before", "recorded-after-onset-before"],
)
def test_timing_of_recorded_reads_recorded_date_else_onset(tmp_path, recorded, onset, expected):
    complication = condition("c", "764680009", system=SNOMED, onset=onset)
    if recorded:
        complication["recordedDate"] = recorded
    assert met(tmp_path, RECORDED, complication) is expected


DOSAGE = (
    "{resource: MedicationRequest, codes: ['rxnorm#200031'], timing_of: dosage, overlaps_after: encounter}"
)


def order(*bounds: tuple[str, str | None]) -> dict[str, Any]:
    resource = request("MedicationRequest", "bb", "200031", "2024-01-01T09:00:00Z", system=RXNORM)
    resource["dosageInstruction"] = [
        {"timing": {"repeat": {"boundsPeriod": {"start": s} if e is None else {"start": s, "end": e}}}}
        for s, e in bounds
    ]
    return resource


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ([("2024-01-01", "2025-12-31")], True),
        ([("2024-01-01", None)], True),  # no end: open
        ([("2024-01-01", "2025-03-04")], False),  # ends on the visit day, not after it
        ([("2025-01-01", "2025-12-31"), ("2024-01-01", "2024-03-31")], False),  # the first period decides
        ([("2024-01-01", "2024-12-31"), ("2024-12-15", "2025-12-31")], True),  # overlapping periods collapse
    ],
    ids=["through", "open-end", "ends-on-the-day", "first-ended", "collapsed"],
)
def test_timing_of_dosage_is_the_first_collapsed_bounds_period(tmp_path, bounds, expected):
    assert met(tmp_path, DOSAGE, order(*bounds)) is expected


DOSAGE_START = (
    "{resource: MedicationRequest, codes: ['rxnorm#200031'], timing_of: dosage-start,"
    " starts_during: [encounter.start-7d, encounter.start]}"
)


@pytest.mark.parametrize(
    ("events", "bounds", "expected"),
    [
        ([], [("2025-03-01", "2025-12-31")], True),  # no event: the first bounds period's start
        ([], [("2025-01-01", "2025-12-31")], False),
        (["2025-03-02T08:00:00Z"], [("2025-01-01", "2025-12-31")], True),  # an event comes before the bounds
        (["2025-05-01", "2025-03-02"], [], True),  # the earliest event, whatever the order
        (["2025-01-02"], [("2025-03-01", None)], False),  # the event decides, not the later bounds
        ([], [], False),  # neither: no date
    ],
    ids=["bounds-start", "bounds-start-early", "event-first", "earliest-event", "event-early", "none"],
)
def test_timing_of_dosage_start_is_the_first_event_else_the_bounds_start(tmp_path, events, bounds, expected):
    resource = order(*bounds)
    if events:
        resource["dosageInstruction"] = resource["dosageInstruction"] or [{}]
        resource["dosageInstruction"][0].setdefault("timing", {})["event"] = events
    assert met(tmp_path, DOSAGE_START, resource) is expected


SEVERITY = (
    "{resource: Condition, codes: ['snomed#134401001'], severity_valuesets: [2.16.840.1.113883.3.526.3.1092],"
    " overlaps: encounter}"
)


@pytest.mark.parametrize(("severity", "expected"), [("24484000", True), ("255604002", False), (None, False)])
def test_severity_valuesets(tmp_path, severity, expected):
    lvsd = condition("lvsd", "134401001", system=SNOMED)
    if severity:
        lvsd["severity"] = {"coding": [{"system": SNOMED, "code": severity}]}
    assert met(tmp_path, SEVERITY, lvsd) is expected


ALLERGY_INTOLERANCE = (
    "{resource: AllergyIntolerance, codes: ['snomed#373254001'], statuses: [active],"
    " verification_statuses: [confirmed], overlaps_after: encounter}"
)
AI_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
AI_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def allergy_intolerance(verification: str, last: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": "ai",
        "patient": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "373254001"}]},
        "clinicalStatus": {"coding": [{"system": AI_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": AI_VERIFICATION, "code": verification}]},
        "onsetDateTime": "2023-01-01",
    }
    if last:
        resource["lastOccurrence"] = last
    return resource


@pytest.mark.parametrize(
    ("verification", "last", "expected"),
    [("confirmed", None, True), ("confirmed", "2025-03-04", False), ("unconfirmed", None, False)],
    ids=["open", "last-occurrence-that-day", "unconfirmed"],
)
def test_allergy_intolerance_from_onset_to_last_occurrence(tmp_path, verification, last, expected):
    assert met(tmp_path, ALLERGY_INTOLERANCE, allergy_intolerance(verification, last)) is expected


# --------------------------------------------------------- CMS347: any dosage, allergy onset, AdverseEvent

DOSAGES = (
    "{resource: MedicationRequest, codes: ['rxnorm#200031'], timing_of: dosages, overlaps: [encounter.start,"
    " encounter.end]}"
)
DOSAGES_ALSO = (
    "{resource: MedicationRequest, codes: ['rxnorm#200031'],"
    " also: [{timing_of: dosages, overlaps: encounter}]}"
)


@pytest.mark.parametrize("fact", [DOSAGES, DOSAGES_ALSO], ids=["relation", "also"])
@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ([("2024-01-01", "2025-12-31")], True),
        ([("2025-01-01", "2025-12-31"), ("2024-01-01", "2024-03-31")], True),  # the second one overlaps
        ([("2023-01-01", "2023-12-31"), ("2025-02-01", None)], True),  # the second, open, overlaps
        ([("2023-01-01", "2025-03-03")], False),  # ends the day before the visit
        ([], False),
    ],
    ids=["one", "not-the-first", "open-second", "ended-before", "no-dosage"],
)
def test_timing_of_dosages_holds_when_any_bounds_period_does(tmp_path, fact, bounds, expected):
    assert met(tmp_path, fact, order(*bounds)) is expected


ONSET = "{resource: AllergyIntolerance, codes: ['snomed#373254001'], timing_of: onset, overlaps: encounter}"


@pytest.mark.parametrize(
    ("onset", "expected"),
    [("2025-03-04", True), ("2023-01-01", False), (None, False)],
    ids=["onset-that-day", "earlier-onset-without-last-occurrence", "no-onset"],
)
def test_timing_of_onset_reads_the_allergy_onset_alone(tmp_path, onset, expected):
    allergy = allergy_intolerance("confirmed")
    del allergy["onsetDateTime"]
    if onset:
        allergy["onsetDateTime"] = onset
    assert met(tmp_path, ONSET, allergy) is expected


ADVERSE_EVENT = "{resource: AdverseEvent, codes: ['rxnorm#83367'], during: encounter}"


@pytest.mark.parametrize(
    ("code", "recorded", "expected"),
    [
        ("83367", "2025-03-04T09:10:00Z", True),
        ("36567", "2025-03-04T09:10:00Z", False),
        ("83367", None, False),
    ],
    ids=["recorded-that-day", "another-event", "not-recorded"],
)
def test_an_adverse_event_is_coded_by_its_event_and_timed_by_recorded_date(
    tmp_path, code, recorded, expected
):
    event: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": "ae",
        "actuality": "actual",
        "event": {"coding": [{"system": RXNORM, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "date": "2025-03-04T09:10:00Z",  # when it happened: not what the criterion reads
    }
    if recorded:
        event["recordedDate"] = recorded
    assert met(tmp_path, ADVERSE_EVENT, event) is expected


LDL_IN_MG = (
    "{resource: Observation, codes: ['loinc#2089-1'], during: encounter,"
    " value_tests: [{band: {ge: 190}, units: [mg/dL]}]}"
)
LDL_ANY_UNIT = (
    "{resource: Observation, codes: ['loinc#2089-1'], during: encounter, value_tests: [{band: {ge: 190}}]}"
)


@pytest.mark.parametrize(
    ("value", "expected_in_mg", "expected_any"),
    [
        ({"valueQuantity": {"value": 190, "unit": "mg/dL", "code": "mg/dL"}}, True, True),
        ({"valueQuantity": {"value": 189.9, "unit": "mg/dL", "code": "mg/dL"}}, False, False),
        ({"valueQuantity": {"value": 190, "unit": "mmol/L", "code": "mmol/L"}}, False, True),
        ({"valueQuantity": {"value": 195, "comparator": ">", "code": "mg/dL"}}, False, False),
        ({"valueInteger": 190}, False, True),  # not a Quantity: the CQL's `value as Quantity` is null
    ],
    ids=["190-mg", "189.9-mg", "190-mmol", "comparator", "integer"],
)
def test_value_test_units_need_a_quantity_in_one_of_them(tmp_path, value, expected_in_mg, expected_any):
    ldl = {
        "resourceType": "Observation",
        "id": "ldl",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2089-1"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-04T09:10:00Z",
        **value,
    }
    assert met(tmp_path, LDL_IN_MG, ldl) is expected_in_mg
    assert met(tmp_path, LDL_ANY_UNIT, ldl) is expected_any


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"resource": "Procedure", "codes": ["cpt#33510"], "timing_of": "dosages"}, "MedicationRequest only"),
        (
            {"resource": "Condition", "codes": ["icd10cm#I10"], "timing_of": "onset"},
            "AllergyIntolerance only",
        ),
        (
            {
                "resource": "Observation",
                "codes": ["loinc#2089-1"],
                "value_tests": [{"codes": ["snomed#1"], "units": ["%"]}],
            },
            "units apply to a band",
        ),
    ],
    ids=["dosages", "onset", "units"],
)
def test_the_new_timings_and_units_are_checked_where_they_apply(spec, message):
    with pytest.raises(ValidationError, match=message):
        ExistsCriterion.model_validate(spec)
