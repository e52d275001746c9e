"""``part_of`` of an exists on Observation (``fhir_cat2/criteria/links.py``), and the exists that reads every
Observation whatever its code, known by its value (ingest keeps those by their value code): CMS646's staging
result, judged here in a one-population table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.rules.criteria_schema import ExistsCriterion

from .conftest import LOINC, SNOMED, procedure
from .support.tables import numerator_met, one_measure_table, run_table

RESULT = "1228889001"  # a value the criterion reads (SNOMED AJCC cT1)
ANY = """\
exists:
  resource: Observation
  label: a cT1 result part of something
  part_of: any
  value_codes: ["snomed#1228889001"]
"""
BOUND = """\
exists:
  resource: Procedure
  label: a staging with its own cT1 result
  codes: ["snomed#254292007"]
  as: staging
  where:
    exists:
      resource: Observation
      label: a cT1 result part of this staging
      part_of: staging
      value_codes: ["snomed#1228889001"]
"""


def result(oid: str = "tnm", *, part_of: str | None = "stage", value: str = RESULT) -> dict[str, Any]:
    """An Observation under a code no rule reads, valued with a code the criterion reads."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "21905-5"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-04T09:00:00Z",
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": value}]},
    }
    if part_of is not None:
        resource["partOf"] = [{"reference": f"Procedure/{part_of}"}]
    return resource


def met(tmp_path: Path, numerator: str, *resources: dict[str, Any]) -> bool:
    return numerator_met(tmp_path, one_measure_table(numerator), *resources)


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([result()], True),
        ([result(part_of="elsewhere")], True),
        ([result(part_of=None)], False),
        ([result(value="1228892002")], False),
    ],
    ids=["part-of-the-staging", "part-of-anything", "part-of-nothing", "another-value"],
)
def test_part_of_any_needs_a_part_of_and_reads_any_code(tmp_path, resources, expected):
    """The result's own code (LOINC 21905-5) is in no rule: ingest keeps it for its value."""
    assert met(tmp_path, ANY, *resources) is expected


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([procedure("stage", "254292007"), result()], True),
        ([procedure("stage", "254292007"), result(part_of="other")], False),
        ([procedure("stage", "254292007"), procedure("other", "254292007"), result(part_of="other")], True),
        ([procedure("stage", "254292007"), result(part_of=None)], False),
    ],
    ids=["its-own-staging", "another-resource", "the-other-staging", "part-of-nothing"],
)
def test_part_of_a_bound_resource(tmp_path, resources, expected):
    assert met(tmp_path, BOUND, *resources) is expected


def test_part_of_is_for_observations_and_an_exists_needs_codes_or_value_codes():
    with pytest.raises(ValidationError, match="part_of and components apply to resource Observation only"):
        ExistsCriterion.model_validate(
            {"resource": "Procedure", "codes": ["snomed#254292007"], "part_of": "any"}
        )
    with pytest.raises(ValidationError, match="give codes or valuesets"):
        ExistsCriterion.model_validate({"resource": "Observation", "part_of": "any"})
    ExistsCriterion.model_validate({"resource": "Observation", "value_codes": ["snomed#1228889001"]})


def test_value_screening_keeps_only_what_a_codeless_exists_reads(tmp_path):
    run = run_table(tmp_path, one_measure_table(ANY), result(), result("other", value="1228892002"))
    ruleset = run.pipeline.ruleset
    assert ruleset.value_screened_codes() == {"Observation": frozenset({(SNOMED, RESULT)})}
    assert run.pipeline.stats.resources_used["Observation"] == 1
