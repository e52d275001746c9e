"""``value_present`` of an exists on Observation: the CQL's ``value is not null``, whatever the value's type,
and not a value given as absent (dataAbsentReason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import coded_obs
from .support.tables import numerator_met, one_measure_table

TABLE = one_measure_table(
    """\
exists:
  resource: Observation
  label: an assessment with a result
  codes: ["loinc#71955-9"]
  value_present: true
"""
)


def assessment(**value: Any) -> dict[str, Any]:
    resource = coded_obs("a", "71955-9")
    resource.update(value)
    return resource


@pytest.mark.parametrize(
    "value",
    [
        {"valueQuantity": {"value": 40, "unit": "{score}"}},
        {"valueInteger": 40},
        {"valueString": "forty"},
        {"valueBoolean": False},
        {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]}},
        {"valueRange": {"low": {"value": 30}, "high": {"value": 40}}},
        {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 2}}},
        {"valueSampledData": {"origin": {"value": 0}, "period": 10, "dimensions": 1, "data": "1 2"}},
        {"valueTime": "09:30:00"},
        {"valueDateTime": "2025-03-04"},
        {"valuePeriod": {"start": "2025-03-01", "end": "2025-03-04"}},
    ],
    ids=lambda value: next(iter(value)),
)
def test_a_value_of_any_type_is_a_value(tmp_path: Path, value: dict[str, Any]) -> None:
    assert numerator_met(tmp_path, TABLE, assessment(**value)) is True


def test_no_value_or_an_absent_one_is_none(tmp_path: Path) -> None:
    assert numerator_met(tmp_path, TABLE, assessment()) is False
    absent = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-declined"}
        ]
    }
    assert numerator_met(tmp_path, TABLE, assessment(dataAbsentReason=absent)) is False
