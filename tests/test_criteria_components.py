"""``components`` of an exists on Observation (``fhir_cat2/criteria/components.py``): component values read as
the CQL's ``singleton from (Obs.component C where C.code ~ X and (C.value as Quantity).unit = U ...)``, and a
threshold table by the Observation's coded value (CMS1056 reads both), judged in a one-population table."""

from __future__ import annotations

from pathlib import Path
from textwrap import indent
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.rules.components import ComponentTest
from fhir_cat2.rules.criteria_schema import ExistsCriterion

from .conftest import LOINC
from .support.tables import numerator_met, one_measure_table

NUMERATOR = """\
exists:
  resource: Observation
  label: the result under test
  codes: ["loinc#96914-7"]
  components:
    values:
      noise: {code: "loinc#96912-1", unit: "[hnsf'U]"}
      dose: {code: "loinc#96913-9", unit: mGy.cm}
"""
ROWS = """\
rows:
  - {code: "loinc#LA31753-9", display: "Abdomen and Pelvis Routine Dose", at_least: {noise: 29, dose: 644}}
  - {code: "loinc#LA31764-6", at_least: {noise: 115}}
  - {code: "loinc#LA31771-1", display: "Full Body"}
"""
ABDOMEN = ("LA31753-9", "Abdomen and Pelvis Routine Dose")


def part(code: str, value: float, unit: str, comparator: str | None = None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value, "system": "http://unitsofmeasure.org", "code": unit}
    if comparator:
        quantity["comparator"] = comparator
    return {"code": {"coding": [{"system": LOINC, "code": code}]}, "valueQuantity": quantity}


def result(
    category: tuple[str, str | None] = ABDOMEN, noise: float = 20, dose: float = 500, *, parts: Any = None
) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": LOINC, "code": category[0]}
    if category[1] is not None:
        coding["display"] = category[1]
    return {
        "resourceType": "Observation",
        "id": "ct",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "96914-7"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-04T10:00:00Z",
        "valueCodeableConcept": {"coding": [coding]},
        "component": parts
        if parts is not None
        else [part("96912-1", noise, "[hnsf'U]"), part("96913-9", dose, "mGy.cm")],
    }


def met(tmp_path: Path, rows: str, *resources: dict[str, Any]) -> bool:
    table = one_measure_table(NUMERATOR + indent(rows, "    "), improvement_notation="decrease")
    return numerator_met(tmp_path, table, *resources)


@pytest.mark.parametrize(
    ("scan", "expected"),
    [
        (result(), True),
        (result(parts=[part("96912-1", 20, "[hnsf'U]")]), False),
        (result(parts=[part("96912-1", 20, "[hnsf'U]"), part("96913-9", 500, "mGy")]), False),
        (
            result(
                parts=[
                    part("96912-1", 20, "[hnsf'U]"),
                    part("96912-1", 21, "[hnsf'U]"),
                    part("96913-9", 500, "mGy.cm"),
                ]
            ),
            False,
        ),
        (result(parts=[part("96912-1", 20, "[hnsf'U]", "<"), part("96913-9", 500, "mGy.cm")]), False),
    ],
    ids=["both-known", "one-missing", "other-unit", "two-of-one-code", "a-comparator"],
)
def test_values_must_each_be_one_component_in_its_unit(tmp_path, scan, expected):
    assert met(tmp_path, "", scan) is expected


@pytest.mark.parametrize(
    ("scan", "expected"),
    [
        (result(noise=29), True),
        (result(noise=28.9), False),
        (result(dose=644), True),
        (result(dose=643.9), False),
        (result((ABDOMEN[0], None), noise=40), False),
        (result((ABDOMEN[0], "abdomen"), noise=40), False),
        (result(("LA31764-6", None), noise=115), True),
        (result(("LA31764-6", "anything"), noise=114, dose=5000), False),
        (result(("LA31771-1", "Full Body")), True),
        (result(("LA31771-1", None)), False),
        (result(("LA31765-3", "Extremity"), noise=500), False),
    ],
    ids=[
        "noise-at",
        "noise-below",
        "dose-at",
        "dose-below",
        "no-display",
        "other-display",
        "no-display-needed",
        "only-listed-components",
        "code-alone",
        "code-alone-without-display",
        "no-row",
    ],
)
def test_threshold_rows(tmp_path, scan, expected):
    assert met(tmp_path, ROWS, scan) is expected


def test_rows_name_only_known_values_and_components_are_for_observations():
    with pytest.raises(ValidationError, match="size not among values"):
        ComponentTest.model_validate(
            {
                "values": {"noise": {"code": "loinc#96912-1", "unit": "1"}},
                "rows": [{"code": "loinc#X", "at_least": {"size": 1}}],
            }
        )
    with pytest.raises(ValidationError, match="apply to resource Observation only"):
        ExistsCriterion.model_validate(
            {
                "resource": "Procedure",
                "codes": ["snomed#1"],
                "components": {"values": {"noise": {"code": "loinc#96912-1", "unit": "1"}}},
            }
        )
