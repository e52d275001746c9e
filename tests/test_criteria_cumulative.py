"""Cumulative medication duration (``fhir_cat2/criteria/cumulative.py``), as CQL CumulativeMedicationDuration
4.1.000 computes it: rolloutIntervals, cumulativeDuration of periods intersected with a window; and the
supply period of a MedicationDispense (medicationDispensePeriod)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from fhir_cat2.criteria.cumulative import covered_days, cumulative_days, rollout
from fhir_cat2.rules.criteria_schema import ExistsCriterion
from fhir_cat2.sources.fields import to_record
from fhir_cat2.sources.records import EventRecord

D = date(2025, 1, 1)


def days(first: int, last: int) -> tuple[date, date]:
    """Days ``first``..``last`` after 1 January 2025."""
    return D + timedelta(days=first), D + timedelta(days=last)


def test_rollout_lays_overlapping_periods_end_to_end() -> None:
    # 30 days from day 0, a refill of 30 days picked up on day 20: it starts on day 30, when the first ends
    assert rollout([days(20, 49), days(0, 29)]) == [days(0, 29), days(30, 59)]


def test_rollout_keeps_a_gap() -> None:
    assert rollout([days(0, 9), days(15, 24)]) == [days(0, 9), days(15, 24)]


def test_rollout_of_adjacent_periods_moves_nothing() -> None:
    assert rollout([days(0, 9), days(10, 19)]) == [days(0, 9), days(10, 19)]


def test_rollout_carries_a_push_forward() -> None:
    # three fills on the same day: 30, 30 and 30 days end to end
    assert rollout([days(0, 29)] * 3) == [days(0, 29), days(30, 59), days(60, 89)]


def test_covered_days_collapses_overlaps() -> None:
    # CMS128: dispenses collapsed, not rolled out: the overlap counts once
    assert covered_days([days(0, 29), days(20, 49)], *days(0, 114)) == 50


def test_covered_days_clips_to_the_window_both_edges() -> None:
    assert covered_days([days(-10, 9)], *days(0, 114)) == 10
    assert covered_days([days(100, 199)], *days(0, 114)) == 15


def test_covered_days_counts_both_ends_of_a_period() -> None:
    assert covered_days([days(0, 0)], *days(0, 114)) == 1
    assert covered_days([days(0, 9), days(10, 19)], *days(0, 114)) == 20


def test_covered_days_of_nothing_in_the_window_is_null() -> None:
    assert covered_days([days(200, 229)], *days(0, 114)) is None
    assert covered_days([], *days(0, 114)) is None


def _dispense(rid: str, code: str, handed_over: str | None, **fields: Any) -> EventRecord:
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": rid,
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}]
        },
        "subject": {"reference": "Patient/p1"},
        **fields,
    }
    if handed_over:
        resource["whenHandedOver"] = handed_over
    record = to_record(resource, None, lambda ref: ref, rid)  # type: ignore[arg-type]
    assert isinstance(record, EventRecord)
    return record


def _supply(value: float, unit: str = "d") -> dict[str, Any]:
    return {
        "daysSupply": {"value": value, "unit": "day", "system": "http://unitsofmeasure.org", "code": unit}
    }


def test_dispense_period_from_days_supply() -> None:
    record = _dispense("d1", "1", "2025-01-10T10:00:00Z", **_supply(30))
    assert record.supply is not None
    assert (record.supply.start_day, record.supply.end_day) == (date(2025, 1, 10), date(2025, 2, 8))


def test_dispense_period_from_quantity_and_dosage() -> None:
    dosage = {
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1}}],
    }
    record = _dispense("d1", "1", "2025-01-10", quantity={"value": 60}, dosageInstruction=[dosage])
    assert record.supply is not None
    assert record.supply.end_day == date(2025, 2, 8)  # 60 tablets, 2 a day: 30 days


def test_dispense_period_falls_back_to_when_prepared() -> None:
    record = _dispense("d1", "1", None, whenPrepared="2025-03-01", **_supply(10))
    assert record.supply is not None and record.supply.start_day == date(2025, 3, 1)


def test_dispense_without_a_length_or_a_date_has_no_period() -> None:
    assert _dispense("d1", "1", "2025-01-10").supply is None
    assert _dispense("d2", "1", None, **_supply(30)).supply is None


def test_cumulative_days_per_code_set() -> None:
    # two drugs on the same days: each rolled out on its own, then collapsed together (CMS136)
    first = _dispense("a1", "1", "2025-01-01", **_supply(30))
    refill = _dispense("a2", "1", "2025-01-21", **_supply(30))
    other = _dispense("b1", "2", "2025-01-01", **_supply(30))
    records = [first, refill, other]
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
    sets = [frozenset({(rx, "1")}), frozenset({(rx, "2")})]
    assert cumulative_days(records, *days(0, 300), "each_code_set", sets) == 60
    assert cumulative_days(records, *days(0, 300), "together") == 90
    assert cumulative_days(records, *days(0, 300), "none") == 50
    assert cumulative_days([], *days(0, 300), "together") is None


def test_cumulative_days_needs_a_supplied_resource() -> None:
    with pytest.raises(ValueError, match="cumulative_days applies"):
        ExistsCriterion.model_validate(
            {
                "resource": "Procedure",
                "codes": ["snomed#1"],
                "cumulative_days": {"within": ["period.start", "period.end"], "band": {"ge": 84}},
            }
        )


def test_days_supply_in_months_and_years_converts_as_ucum() -> None:
    # CQL `convert daysSupply to days`: a UCUM month is 30.4375 days, a year 365.25
    record = _dispense("d1", "1", "2025-01-15", **_supply(2.78, "mo"))  # 84.6 days
    assert record.supply is not None and record.supply.end_day == date(2025, 4, 8)  # IPSD + 83
    record = _dispense("d2", "1", "2025-01-01", **_supply(4, "a"))  # 1461 days, not 1460
    assert record.supply is not None and record.supply.end_day == date(2028, 12, 31)
