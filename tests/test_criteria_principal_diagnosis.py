"""principal_diagnosis_valuesets: an Encounter's principal diagnosis (QICoreCommon principalDiagnosis(): the
Encounter.diagnosis ranked 1 with use billing) in value sets. The reader picks the reference; the judge reads
the Condition it names (CMS136's inpatient stays, tests/test_measure_cms136.py)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_cat2.rules.criteria_schema import ExistsCriterion
from fhir_cat2.sources.fields import to_record
from fhir_cat2.sources.records import EncounterRecord

from .conftest import encounter

ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"


def _diagnosis(cid: str, rank: int | None, use: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"condition": {"reference": f"Condition/{cid}"}}
    if rank is not None:
        found["rank"] = rank
    if use is not None:
        found["use"] = {"coding": [{"system": ROLE, "code": use}]}
    return found


def _principal(*diagnoses: dict[str, Any]) -> str | None:
    resource = encounter("e1")
    resource["diagnosis"] = list(diagnoses)
    record = to_record(resource, None, lambda ref: ref, "e1")  # type: ignore[arg-type]
    assert isinstance(record, EncounterRecord)
    return record.principal_diagnosis


def test_the_billing_diagnosis_ranked_1_is_principal() -> None:
    assert _principal(_diagnosis("a", 2, "billing"), _diagnosis("b", 1, "billing")) == "Condition/b"


@pytest.mark.parametrize(
    ("rank", "use"),
    [(2, "billing"), (1, "AD"), (1, None), (None, "billing")],
    ids=["rank-2", "admission", "no-use", "no-rank"],
)
def test_no_principal_diagnosis_without_rank_1_and_use_billing(rank: int | None, use: str | None) -> None:
    assert _principal(_diagnosis("a", rank, use)) is None


def test_an_encounter_without_diagnoses_has_none() -> None:
    assert _principal() is None


def test_principal_diagnosis_valuesets_apply_to_encounters_only() -> None:
    with pytest.raises(ValueError, match="apply to resource Encounter only"):
        ExistsCriterion.model_validate(
            {"resource": "Procedure", "codes": ["snomed#1"], "principal_diagnosis_valuesets": ["1.2.3"]}
        )
