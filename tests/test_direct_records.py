"""The direct input path (sources/direct.py) builds exactly the records the pydantic slim models build, and
declines everything it would read differently, so quarantine reasons keep naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.sources import slim
from fhir_cat2.sources.files import InputItem, iter_input_files, read_file

from .conftest import ROOT, SHARED
from .support.direct import check_same

# Every field of every slim model the direct path reads, as direct.py checks them. A field added to a slim
# model must be checked (and read, if a builder uses it) in direct.py too: then update this list.
DIRECT_FIELDS = {
    "Coding": "code system",
    "CodeableConcept": "coding text",
    "Reference": "display reference",
    "Period": "end start",
    "Quantity": "code comparator system unit value",
    "Extension": "url valueBoolean valueCodeableConcept",
    "Meta": "lastUpdated versionId",
    "EncounterDiagnosis": "condition rank",
    "EncounterParticipant": "individual",
    "EncounterLocation": "location",
    "EncounterHospitalization": "dischargeDisposition",
    "Encounter": "class_ diagnosis hospitalization id location meta participant period resourceType "
    "serviceProvider status subject type",
    "ObservationComponent": "code dataAbsentReason valueQuantity",
    "Observation": "category code component dataAbsentReason effectiveDateTime effectiveInstant "
    "effectivePeriod encounter extension id issued meta resourceType status subject valueBoolean "
    "valueCodeableConcept valueInteger valueQuantity valueString",
    "Condition": "abatementDateTime abatementPeriod category clinicalStatus code encounter id meta "
    "onsetDateTime onsetPeriod recordedDate resourceType subject verificationStatus",
    # dispenseRequest and dosageInstruction: present and not empty, the pydantic path reads the resource
    "Event": "authoredOn category code codeCodeableConcept context date dateTime dispenseRequest "
    "doNotPerform dosageInstruction encounter extension id intent medicationCodeableConcept meta "
    "modifierExtension occurrenceDateTime occurrencePeriod patient performedDateTime performedPeriod period "
    "reasonCode resourceType status statusReason subject type vaccineCode",
    "ClaimInsurance": "coverage focal sequence",
    "ClaimDiagnosis": "diagnosisCodeableConcept diagnosisReference sequence",
    "ClaimItem": "encounter",
    "Claim": "diagnosis id insurance item meta patient provider resourceType status",
}


@pytest.mark.parametrize("model", sorted(DIRECT_FIELDS))
def test_the_direct_path_knows_every_field_of_the_slim_models(model: str) -> None:
    assert sorted(getattr(slim, model).model_fields) == sorted(DIRECT_FIELDS[model].split())


def _items(paths: list[Path]) -> list[InputItem]:
    return [
        item
        for path in iter_input_files([str(p) for p in paths])
        for item in read_file(path)
        if isinstance(item, InputItem)
    ]


def _compare(items: list[InputItem]) -> dict[str, int]:
    """How many resources of the types the direct path reads took it, and how many it declined."""
    outcome = {"direct": 0, "declined": 0}
    for item in items:
        if item.resource["resourceType"] in slim.SLIM_MODELS:
            how = check_same(item.resource, item.resolve, item.resource_id)
            if item.resource["resourceType"] in DIRECT_TYPES:
                outcome[how] += 1
    return outcome


DIRECT_TYPES = set(slim.SLIM_MODELS) - {"Patient", "Coverage"}


def test_same_records_on_the_fixtures() -> None:
    assert _compare(_items([ROOT / "fixtures"])) == {"direct": 79, "declined": 0}


@pytest.mark.corpus
def test_same_records_on_the_public_corpora() -> None:
    corpus = SHARED / "corpus"
    if not corpus.exists():
        pytest.skip(f"reference material not available: {corpus}")
    outcome = _compare(_items([corpus]))
    assert outcome["direct"] > 100 * outcome["declined"]  # the direct path is the common one


OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "meta": {"lastUpdated": "2025-03-04T10:00:00Z", "versionId": "2", "tag": [{"code": "x"}]},
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "BP"}], "text": "BP"},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1", "display": "visit"},
    "effectiveDateTime": "2025-03-04T09:00:00+01:00",
    "issued": "2025-03-04",
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "valueQuantity": {
                "value": 128,
                "unit": "mm[Hg]",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        },
        {
            "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "8462-4"}]},
            "valueQuantity": {"value": 79.5, "unit": "mm[Hg]"},
        },
    ],
}


def _with(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


_DELETE = object()


def test_a_regular_observation_takes_the_direct_path() -> None:
    assert check_same(OBSERVATION) == "direct"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("status",), None),  # required
        (("code",), _DELETE),  # required
        (("category",), None),  # a list may be absent, not null
        (("code", "coding"), None),
        (("code", "coding", 0, "code"), 8480),  # pydantic does not make a string of a number
        (("code", "text"), ["BP"]),
        (("component", 0, "valueQuantity", "value"), "128"),  # ...but it does make a number of a string
        (("component", 0, "valueQuantity", "value"), True),
        (("component", 1, "code"), None),
        (("valueInteger",), 3.0),  # and an integer of a whole float
        (("valueInteger",), "3"),
        (("valueBoolean",), "true"),
        (("valueBoolean",), 1),
        (("effectiveDateTime",), "2025-02-30"),  # a bad date: the pydantic path names the field
        (("effectivePeriod",), {"start": "2025-03-04", "end": "2025-03-01"}),
        (("meta",), "v2"),
        (("id",), 7),
        (("subject", "display"), 7),
        (("encounter", "reference"), {"reference": "Encounter/e1"}),
        (("extension",), [{"url": 5}]),
        (("dataAbsentReason",), "unknown"),
    ],
)
def test_the_direct_path_declines_what_pydantic_would_read_otherwise(
    path: tuple[Any, ...], value: Any
) -> None:
    assert check_same(_with(OBSERVATION, path, value)) == "declined"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("valueInteger",), 2**64 - 1),
        (("component", 0, "valueQuantity", "value"), 2**64 - 1),
        (("component", 0, "valueQuantity", "value"), 1e308),
        (("valueString",), "12"),
        (("valueBoolean",), False),
        (("effectiveDateTime",), _DELETE),
        (("effectivePeriod",), {"start": "2025-03-04"}),
        (("meta",), None),
        (("category",), []),
        (("code", "coding"), []),
        (("code", "coding", 0, "code"), ""),
        (("dataAbsentReason",), {}),
        (
            ("extension",),
            [{"url": "http://x/qicore-notDoneReason", "valueCodeableConcept": {"coding": [{"code": "a"}]}}],
        ),
        (("unknownElement",), {"anything": [1, None]}),
    ],
)
def test_the_direct_path_reads_the_same_record_from_unusual_but_valid_input(
    path: tuple[Any, ...], value: Any
) -> None:
    assert check_same(_with(OBSERVATION, path, value)) == "direct"


def test_encounter_class_under_the_models_own_name_is_left_to_pydantic() -> None:
    encounter = {"resourceType": "Encounter", "status": "finished", "class_": {"code": "AMB"}}
    assert check_same(encounter) == "declined"
    assert check_same({**encounter, "class": {"code": "AMB"}}) == "declined"
    assert (
        check_same({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}) == "direct"
    )
