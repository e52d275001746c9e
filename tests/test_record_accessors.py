"""What criteria read of a record, defined once on the record classes: codes, categories, status, reasons,
not-done, value, code mappings and the time a ``timing_of`` reads; and when a record applies (``span``)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_cat2.conceptmaps import CodeMapping
from fhir_cat2.criteria.spans import span
from fhir_cat2.sources.records import (
    ClaimRecord,
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

SRC = Src("f.json", "")
CODE = ("http://snomed.info/sct", "1")
REASON = ("http://snomed.info/sct", "2")
DAY = When(date(2025, 3, 4), date(2025, 3, 4), datetime(2025, 3, 4, 9, tzinfo=UTC))
OTHER = When(date(2025, 5, 1), date(2025, 5, 1))
LATER = When(date(2025, 6, 1), date(2025, 6, 30))


def _base(resource_type: str) -> tuple[str, str, str, Src, None, None]:
    return (resource_type, "x", "p", SRC, None, None)


def _mapping() -> CodeMapping:
    return CodeMapping(source=("local", "a"), target=CODE, map="http://example.org/map")


def test_encounter_is_matched_by_its_type() -> None:
    mapped = (_mapping(),)
    encounter = EncounterRecord(*_base("Encounter"), status="finished", type_codes=frozenset({CODE}))
    encounter.mapped = mapped
    encounter.when = DAY
    assert encounter.primary_codes == frozenset({CODE})
    assert encounter.status_code == "finished"
    assert encounter.mappings == mapped
    assert encounter.category_codes == frozenset() and encounter.reasons == frozenset()
    assert not encounter.not_done
    assert encounter.time_of() is DAY and encounter.time_of("issued") is None


def test_condition_status_is_its_clinical_status() -> None:
    condition = ConditionRecord(
        *_base("Condition"), codes=frozenset({CODE}), categories=frozenset({"problem-list-item"})
    )
    assert condition.status_code is None
    condition.clinical_status = "resolved"
    assert condition.status_code == "resolved"
    assert condition.primary_codes == frozenset({CODE})
    assert condition.category_codes == frozenset({"problem-list-item"})
    assert condition.reasons == frozenset() and not condition.not_done


@pytest.mark.parametrize(("status", "not_done"), [("cancelled", True), ("final", False), ("", False)])
def test_a_cancelled_observation_documents_not_done(status: str, not_done: bool) -> None:
    observation = ObservationRecord(*_base("Observation"), status=status, reason_codes=frozenset({REASON}))
    assert observation.not_done is not_done
    assert observation.status_code == (status or None)
    assert observation.reasons == frozenset({REASON})


@pytest.mark.parametrize(
    ("status", "do_not_perform", "not_done"),
    [("not-done", False, True), ("completed", True, True), ("completed", False, False)],
)
def test_an_event_not_done_or_not_to_be_performed(status: str, do_not_perform: bool, not_done: bool) -> None:
    event = EventRecord(*_base("Procedure"), status=status, do_not_perform=do_not_perform)
    assert event.not_done is not_done


def test_the_time_each_timing_of_reads() -> None:
    observation = ObservationRecord(*_base("Observation"), when=DAY, issued=OTHER)
    assert observation.time_of() is DAY
    assert observation.time_of("issued") is OTHER
    assert observation.time_of("authored") is None and observation.time_of("supply") is None
    order = EventRecord(*_base("MedicationRequest"), when=DAY, authored=OTHER, supply=LATER)
    assert order.time_of() is DAY
    assert order.time_of("authored") is OTHER
    assert order.time_of("supply") is LATER
    assert order.time_of("issued") is None


@pytest.mark.parametrize(
    "record",
    [
        PatientRecord(*_base("Patient")),
        CoverageRecord(*_base("Coverage"), status="active"),
        ClaimRecord(*_base("Claim"), status="active"),
    ],
)
def test_records_criteria_do_not_read_have_nothing_to_match(record: ResourceRecord) -> None:
    assert record.primary_codes == frozenset() and record.category_codes == frozenset()
    assert record.reasons == frozenset() and record.mappings == () and not record.not_done
    assert record.time_of() is None and span(record) is None


@pytest.mark.parametrize(
    ("value", "has_value", "shown"),
    [
        ({"quantity": QuantityValue(7.5, "%")}, True, "7.5"),
        ({"quantity": QuantityValue(7.5, "%", "<")}, True, "(none)"),
        ({"value_codes": frozenset({("s", "b"), ("s", "a")})}, True, "a,b"),
        ({"value_int": 3}, True, "3"),
        ({"value_string": "12"}, True, "12"),
        ({"value_string": "positive for something long"}, True, "'positive for somethi'"),  # 20 characters
        ({"value_bool": False}, True, "(none)"),
        ({"quantity": QuantityValue(7.5, "%"), "absent": True}, False, "7.5"),
        ({}, False, "(none)"),
    ],
)
def test_observation_value(value: dict[str, object], has_value: bool, shown: str) -> None:
    observation = ObservationRecord(*_base("Observation"), **value)  # type: ignore[arg-type]
    assert observation.has_value is has_value
    assert observation.shown_value == shown


def test_span_of_a_condition_is_its_prevalence() -> None:
    onset = When(date(2024, 2, 1), date(2024, 2, 1))
    active = ConditionRecord(*_base("Condition"), clinical_status="active", onset=onset)
    assert _days(span(active)) == (date(2024, 2, 1), None)
    abated = ConditionRecord(
        *_base("Condition"), onset=onset, abatement=When(date(2024, 5, 1), date(2024, 5, 2))
    )
    assert _days(span(abated)) == (date(2024, 2, 1), date(2024, 5, 2))
    at = datetime(2024, 5, 1, 8, tzinfo=UTC)
    abated_at = ConditionRecord(*_base("Condition"), onset=onset, abatement=When(at.date(), at.date(), at))
    applies = span(abated_at)
    assert applies is not None and applies.end_instant == at  # an abatementDateTime ends at its instant
    inactive = ConditionRecord(*_base("Condition"), clinical_status="resolved", onset=onset)
    assert span(inactive) is None  # prevalenceInterval() is null: a query over a null abatement end
    no_status = ConditionRecord(*_base("Condition"), onset=onset)
    assert span(no_status) is None
    # Coalesce(recordedDate, start of prevalenceInterval()): no recordedDate and no prevalence, no time
    assert span(inactive, "recorded") is None
    assert _days(span(active, "recorded")) == (date(2024, 2, 1), date(2024, 2, 1))
    assert span(ConditionRecord(*_base("Condition"), clinical_status="resolved")) is None


def test_span_of_a_record_reads_its_timing_of() -> None:
    order = EventRecord(*_base("MedicationRequest"), when=DAY, supply=LATER)
    assert _days(span(order, "supply")) == (date(2025, 6, 1), date(2025, 6, 30))
    assert span(order, "authored") is None
    single = span(order)
    assert single is not None and single.end_instant == DAY.instant  # a single instant ends when it starts
    encounter = EncounterRecord(*_base("Encounter"), when=DAY)
    applies = span(encounter)
    assert applies is not None and applies.end_instant is None  # an encounter's end time is its own


def _days(applies: object) -> tuple[date | None, date | None]:
    assert applies is not None
    return applies.start, applies.end  # type: ignore[attr-defined]
