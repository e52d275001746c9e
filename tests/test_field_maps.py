"""One field map per resource type (sources/fields.py) drives the fast reader, and pydantic only names what
failed: every element the validation model declares, the reader checks; what the reader accepts, pydantic
accepts and reads the same; records come out as written by hand below."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import types
import typing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from fhir_cat2.errors import InputError
from fhir_cat2.sources import readers
from fhir_cat2.sources.fieldmap import Codes, Map, PatientOf, Ref, Text, compile_reader, validation_model
from fhir_cat2.sources.fields import MAPS, READERS, to_record
from fhir_cat2.sources.files import InputItem, iter_input_files, read_file
from fhir_cat2.sources.records import (
    ComponentRecord,
    EventRecord,
    ObservationRecord,
    QuantityValue,
    ResourceRecord,
    Src,
    When,
)
from fhir_cat2.sources.values import plain_resolver

from .conftest import ROOT, SHARED
from .support.fieldmaps import check_reader, same

SRC = Src("test", "entry[0]")
LOINC, RXNORM = "http://loinc.org", "http://www.nlm.nih.gov/research/umls/rxnorm"


def _record(resource: dict[str, Any], resource_id: str = "x") -> ResourceRecord:
    return to_record(resource, SRC, plain_resolver, resource_id)


# ----------------------------------------------------------------------------- every element is checked


def _unwrap(annotation: Any) -> Any:
    """X | None -> X."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner
    return annotation


def _element_paths(model: type[BaseModel], prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """(path, a JSON value of the wrong type there) for every element the model declares, nested ones too."""
    out = []
    for name, field in model.model_fields.items():
        element = field.alias or name
        annotation = _unwrap(field.annotation)
        path = (*prefix, element)
        if annotation is Any or element == "resourceType":
            continue
        if typing.get_origin(annotation) is list:
            out.append((path, 5))
            (item,) = typing.get_args(annotation)
            if isinstance(item, type) and issubclass(item, BaseModel):
                out.append(((*path, 0), 5))
                out += _element_paths(item, (*path, 0))
            else:
                out.append(((*path, 0), {}))
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.append((path, 5))
            out += _element_paths(annotation, path)
        else:
            out.append((path, 5 if annotation is str else "x"))
    return out


def _minimal(resource_type: str) -> dict[str, Any]:
    """A resource with only what its model requires."""
    resource: dict[str, Any] = {"resourceType": resource_type}
    for name, field in READERS[resource_type].model.model_fields.items():
        if field.is_required() and name != "resourceType":
            resource[field.alias or name] = "x" if field.annotation is str else {}
    return resource


def _set(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``resource`` with ``value`` at ``path``, making the objects and lists on the way."""
    changed = copy.deepcopy(resource)
    node: Any = changed
    for step, after in itertools.pairwise(path):
        if isinstance(step, int):
            while len(node) <= step:
                node.append({})
            node = node[step]
        else:
            node = node.setdefault(step, [] if isinstance(after, int) else {})
    if isinstance(path[-1], int):
        node.append(value)
    else:
        node[path[-1]] = value
    return changed


WRONG_TYPES = [
    pytest.param(resource_type, path, value, id=f"{resource_type}.{'.'.join(map(str, path))}")
    for resource_type in MAPS
    for path, value in _element_paths(READERS[resource_type].model)
]


@pytest.mark.parametrize(("resource_type", "path", "value"), WRONG_TYPES)
def test_every_element_the_model_declares_the_reader_checks(
    resource_type: str, path: tuple[Any, ...], value: Any
) -> None:
    resource = _set(_minimal(resource_type), path, value)
    with pytest.raises((readers.Unexpected, InputError)):
        READERS[resource_type].read(resource, SRC, plain_resolver, "x")
    with pytest.raises(InputError) as raised:
        _record(resource)
    assert str(raised.value).startswith(f"{resource_type}/x is malformed: ")
    assert ".".join(map(str, path)) + ":" in str(raised.value)  # pydantic names the element


def test_the_minimal_resources_are_read() -> None:
    for resource_type in MAPS:
        assert check_reader(_minimal(resource_type)) == "fast"


def test_the_models_declare_only_what_the_maps_read() -> None:
    observation = READERS["Observation"].model.model_fields
    assert "component" in observation and "interpretation" not in observation
    # only MedicationRequest reads a supply: other types leave dosage and dispense details unvalidated
    assert "dosageInstruction" in READERS["MedicationRequest"].model.model_fields
    assert "dosageInstruction" not in READERS["ServiceRequest"].model.model_fields
    assert len(WRONG_TYPES) > 300


# ----------------------------------------------------------------------------- one edit adds a field


@dataclasses.dataclass(slots=True)
class _Flag(ResourceRecord):
    codes: frozenset[tuple[str, str]] = frozenset()
    author_ref: str | None = None
    note: str = ""


def test_a_field_is_one_entry_in_its_map() -> None:
    field_map = Map(
        _Flag, {"patient_id": PatientOf(Ref("subject")), "codes": Codes("code"), "author_ref": Ref("author")}
    )
    with_note = field_map.but(note=Text("note.text", required=True))
    flag = {
        "resourceType": "Flag",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
        "subject": {"reference": "Patient/p"},
        "author": {"reference": "Practitioner/a"},
        "note": {"text": "n"},
    }
    read, _source = compile_reader(field_map, "Flag")
    record = read(flag, SRC, plain_resolver, "f1")
    assert (record.patient_id, record.codes, record.author_ref, record.note) == (
        "p",
        frozenset({("http://snomed.info/sct", "1")}),
        "Practitioner/a",
        "",
    )
    read_note, source = compile_reader(with_note, "Flag")
    assert read_note(flag, SRC, plain_resolver, "f1").note == "n"
    assert "# note" in source  # the generated reader, one line per field
    model = validation_model(with_note, "Flag")
    assert sorted(model.model_fields) == ["author", "code", "id", "meta", "note", "resourceType", "subject"]
    assert model.model_fields["note"].is_required()


# ----------------------------------------------------------------------------- the corpora


def _items(paths: list[Path]) -> list[InputItem]:
    return [
        item
        for path in iter_input_files([str(p) for p in paths])
        for item in read_file(path)
        if isinstance(item, InputItem)
    ]


def _compare(items: list[InputItem]) -> dict[str, int]:
    """How many resources of the types we read took the fast reader, and how many it declined."""
    outcome = {"fast": 0, "declined": 0}
    for item in items:
        if item.resource["resourceType"] in MAPS:
            outcome[check_reader(item.resource, item.resolve, item.resource_id)] += 1
    return outcome


def test_regular_fixtures_all_take_the_fast_reader() -> None:
    assert _compare(_items([ROOT / "fixtures"])) == {"fast": 114, "declined": 0}


@pytest.mark.corpus
def test_the_public_corpora_take_the_fast_reader() -> None:
    corpus = SHARED / "corpus"
    if not corpus.exists():
        pytest.skip(f"reference material not available: {corpus}")
    outcome = _compare(_items([corpus]))
    assert outcome["fast"] > 100 * outcome["declined"]  # the fast reader is the common one


# ----------------------------------------------------------------------------- records, by hand


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


def test_a_regular_observation_takes_the_fast_reader() -> None:
    assert check_reader(OBSERVATION) == "fast"


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
def test_the_reader_declines_what_pydantic_would_read_otherwise(path: tuple[Any, ...], value: Any) -> None:
    assert check_reader(_with(OBSERVATION, path, value)) == "declined"


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
def test_the_reader_reads_unusual_but_valid_input_as_pydantic_does(path: tuple[Any, ...], value: Any) -> None:
    assert check_reader(_with(OBSERVATION, path, value)) == "fast"


def test_pydantic_coerces_what_the_reader_declines_and_the_record_follows() -> None:
    coerced = _with(OBSERVATION, ("component", 0, "valueQuantity", "value"), "128")
    assert check_reader(coerced) == "declined"
    record = _record(coerced)
    assert isinstance(record, ObservationRecord)
    assert record.components[0].quantity == QuantityValue(128.0, "mm[Hg]", None)


def test_an_observation_reads_as_written_by_hand() -> None:
    record = _record(OBSERVATION, "o1")
    assert record == ObservationRecord(
        resource_type="Observation",
        id="o1",
        patient_id="p1",
        src=SRC,
        last_updated="2025-03-04T10:00:00Z",
        version_id="2",
        status="final",
        categories=frozenset({"vital-signs"}),
        codes=frozenset({("http://loinc.org", "85354-9")}),
        encounter_ref="Encounter/e1",
        when=When(date(2025, 3, 4), date(2025, 3, 4), datetime.fromisoformat("2025-03-04T09:00:00+01:00")),
        components=(
            ComponentRecord(
                frozenset({("http://loinc.org", "8480-6")}), QuantityValue(128.0, "mm[Hg]"), False
            ),
            ComponentRecord(
                frozenset({("http://loinc.org", "8462-4")}), QuantityValue(79.5, "mm[Hg]"), False
            ),
        ),
        issued=When(date(2025, 3, 4), date(2025, 3, 4), datetime(2025, 3, 4, tzinfo=UTC)),
    )
    assert type(record.components[0].quantity.value) is float  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (
            ("effectiveDateTime",),
            "2025-02-30",
            "Observation/x: effectiveDateTime: '2025-02-30' is not a FHIR",
        ),
        (
            ("effectivePeriod",),
            {"start": "2025-03-04", "end": "2025-03-01"},
            "Observation/x: effectivePeriod: end 2025-03-01 is before start 2025-03-04",
        ),
        (("effectivePeriod",), {"start": "2025-13-04"}, "Observation/x: effectivePeriod.start: '2025-13-04'"),
        (("issued",), 20250304, "Observation/x is malformed: issued: Input should be a valid string"),
    ],
)
def test_errors_name_the_resource_and_the_element(path: tuple[Any, ...], value: Any, named: str) -> None:
    resource = _with(OBSERVATION, path, value)
    if path != ("effectiveDateTime",):
        del resource["effectiveDateTime"]
    with pytest.raises(InputError) as raised:
        _record(resource)
    assert str(raised.value).startswith(named)


def test_a_bad_date_in_any_time_element_read_is_named_even_when_another_supplies_the_time() -> None:
    # Every element a map reads is read; before, the pydantic path skipped a later choice's bad date.
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/p"},
        "performedDateTime": "2025-03-04",
        "occurrenceDateTime": "2025-02-30",
    }
    with pytest.raises(InputError, match="occurrenceDateTime: '2025-02-30' is not a FHIR date"):
        _record(procedure)


def test_encounter_class_is_read_under_its_fhir_name_only() -> None:
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
    assert check_reader(encounter) == "fast"
    assert _record(encounter).class_code == "AMB"  # type: ignore[attr-defined]
    # "class_" was the old model's Python name for it, accepted by mistake; it is no FHIR element
    odd = {"resourceType": "Encounter", "status": "finished", "class_": {"code": "AMB"}}
    assert check_reader(odd) == "fast"
    assert _record(odd).class_code is None  # type: ignore[attr-defined]


def test_a_context_that_is_not_a_reference_reads_as_no_encounter() -> None:
    # R4 MedicationAdministration.context is a Reference; a malformed one made pydantic raise a
    # ValidationError that was no InputError, outside quarantine.
    administration = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "subject": {"reference": "Patient/p"},
        "context": {"reference": 5},
    }
    record = _record(administration)
    assert isinstance(record, EventRecord) and record.encounter_ref is None and record.patient_id == "p"
    good = {**administration, "context": {"reference": "Encounter/e"}}
    assert _record(good).encounter_ref == "Encounter/e"  # type: ignore[attr-defined]
    assert _record({**good, "encounter": {"reference": "Encounter/f"}}).encounter_ref == "Encounter/f"  # type: ignore[attr-defined]


def test_only_medication_requests_read_dosage_and_dispense_details() -> None:
    order = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2025-03-04",
        "dispenseRequest": "not read here",
    }
    record = _record(order)
    assert isinstance(record, EventRecord) and record.supply is None
    with pytest.raises(InputError, match="dispenseRequest: Input should be a valid dictionary"):
        _record({**order, "resourceType": "MedicationRequest"})


MEDICATION_REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1"}]
    },
    "subject": {"reference": "Patient/p"},
    "authoredOn": "2025-03-01",
    "dosageInstruction": [
        {
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 1}}],
        }
    ],
    "dispenseRequest": {"quantity": {"value": 60}, "numberOfRepeatsAllowed": 2},
}


@pytest.mark.parametrize(
    ("change", "supply"),
    [
        # 60 tablets, 1 twice a day: 30 days, times 1 + 2 refills: 90 days from authoredOn
        ({}, (date(2025, 3, 1), date(2025, 5, 29))),
        # an expected supply duration wins over the arithmetic
        (
            {
                "dispenseRequest": {
                    "expectedSupplyDuration": {"value": 2, "code": "wk"},
                    "quantity": {"value": 1},
                }
            },
            (date(2025, 3, 1), date(2025, 3, 14)),
        ),
        # the dosage bounds start the period; with no quantity, their end closes it
        (
            {
                "dosageInstruction": [
                    {"timing": {"repeat": {"boundsPeriod": {"start": "2025-04-01", "end": "2025-04-10"}}}}
                ],
                "dispenseRequest": {},
            },
            (date(2025, 4, 1), date(2025, 4, 10)),
        ),
        # a dose range's high value, times of day as doses a day: 60 / (2 x 3) = 10 days
        (
            {
                "dosageInstruction": [
                    {
                        "timing": {"repeat": {"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}},
                        "doseAndRate": [{"doseRange": {"low": {"value": 1}, "high": {"value": 2}}}],
                    }
                ],
                "dispenseRequest": {"quantity": {"value": 60}},
            },
            (date(2025, 3, 1), date(2025, 3, 10)),
        ),
        # a dose without a frequency or times of day: the CQL's doses a day are Count(timeOfDay) = 0 (its
        # default 1.0 is never reached), so the days are unknown, and with no bounds end there is no period
        (
            {
                "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 1}}]}],
                "dispenseRequest": {"quantity": {"value": 60}},
            },
            None,
        ),
        # two dosages: no single dose to divide by, so no period (CQL returns null)
        ({"dosageInstruction": [{}, {}], "dispenseRequest": {"quantity": {"value": 60}}}, None),
        ({"dosageInstruction": [], "dispenseRequest": {}}, None),
    ],
)
def test_a_medication_requests_supply_is_read_by_the_fast_reader(
    change: dict[str, Any], supply: tuple[date, date] | None
) -> None:
    resource = {**MEDICATION_REQUEST, **change}
    assert check_reader(resource) == "fast"
    record = _record(resource)
    assert isinstance(record, EventRecord)
    assert (None if record.supply is None else (record.supply.start_day, record.supply.end_day)) == supply


@pytest.mark.parametrize(
    ("change", "days", "refills", "dispensed"),
    [
        ({}, 90.0, 2, (60.0, None)),
        (
            {
                "dispenseRequest": {
                    "expectedSupplyDuration": {"value": 45, "code": "d"},
                    "numberOfRepeatsAllowed": 1,
                }
            },
            90.0,
            1,
            None,
        ),
        (
            {"dispenseRequest": {"quantity": {"value": 150, "unit": "mL", "code": "mL"}}},
            75.0,
            None,
            (150.0, "mL"),
        ),
        ({"dispenseRequest": {}}, None, None, None),
    ],
)
def test_a_medication_requests_days_supplied_refills_and_quantity_are_read(
    change: dict[str, Any], days: float | None, refills: int | None, dispensed: tuple[float, str] | None
) -> None:
    resource = {**MEDICATION_REQUEST, **change}
    assert check_reader(resource) == "fast"
    record = _record(resource)
    assert isinstance(record, EventRecord)
    assert (record.days_supplied, record.refills) == (days, refills)
    quantity = record.dispensed
    assert (None if quantity is None else (quantity.value, quantity.unit)) == dispensed


def test_a_supply_from_coerced_input_is_the_same() -> None:
    coerced = copy.deepcopy(MEDICATION_REQUEST)
    coerced["dispenseRequest"]["quantity"]["value"] = "60"
    coerced["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 2.0
    assert check_reader(coerced) == "declined"
    assert same(_record(coerced), _record(MEDICATION_REQUEST))


def test_a_supply_past_the_calendar_is_named_not_a_crash() -> None:
    endless = {
        **MEDICATION_REQUEST,
        "dispenseRequest": {"expectedSupplyDuration": {"value": 1e300, "code": "d"}},
    }
    with pytest.raises(
        InputError, match="MedicationRequest/x: dispenseRequest: the supply it describes ends"
    ):
        _record(endless)


def test_no_doses_a_day_give_no_supply_period_not_a_crash() -> None:
    never = copy.deepcopy(MEDICATION_REQUEST)
    never["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 0
    record = _record(never)
    assert isinstance(record, EventRecord) and record.supply is None
