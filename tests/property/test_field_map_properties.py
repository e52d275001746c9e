"""Property test of the field maps: whatever a resource's fields hold, the fast reader builds the record
pydantic's reading of it gives, or declines and leaves the resource to the validation model, which reads it
or names the failing field."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fhir_cat2.sources.fields import MAPS

from ..support.fieldmaps import check_reader
from .test_input_properties import PATIENT_BUNDLES, json_values

# What pydantic coerces in lax mode, or rejects: the fast reader must tell them apart from exact types.
TRICKY = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    2.5,
    -3,
    2**64 - 1,
    "",
    "1",
    "2.5",
    "true",
    [],
    {},
    [None],
    [{}],
    {"x": 1},
]
# a new object each time (the resource is changed in place afterwards)
tricky = st.sampled_from([json.dumps(value) for value in TRICKY]).map(json.loads)


RESOURCES = [
    entry["resource"]
    for path in PATIENT_BUNDLES
    for entry in json.loads(path.read_text())["entry"]
    if entry["resource"]["resourceType"] in MAPS
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every element's path, down to a depth the models read (drawn values may nest much deeper)."""
    out = [prefix]
    if len(prefix) < 8:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out += _paths(value, (*prefix, key))
    return out


@st.composite
def mutated_resources(draw: st.DrawFn) -> dict[str, Any]:
    """A fixture resource of a type we read, with one to three elements replaced by anything,
    removed, or added."""
    resource = json.loads(json.dumps(draw(st.sampled_from(RESOURCES))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(resource)[1:]))
        if path[0] == "resourceType":
            continue
        parent: Any = resource
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "tricky", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["code", "value", "reference", "coding", "start", "x"]))] = draw(
                tricky
            )
        elif action == "tricky":
            parent[path[-1]] = draw(tricky)
        else:
            parent[path[-1]] = draw(json_values)  # a fresh value (deep: no copying it)
    return resource


@given(resource=mutated_resources())
def test_the_fast_reader_reads_as_pydantic_does_or_leaves_it_to_pydantic(resource: dict[str, Any]) -> None:
    check_reader(resource)


def test_there_are_resources_to_mutate() -> None:
    assert {r["resourceType"] for r in RESOURCES} >= {"Observation", "Encounter", "Condition", "Procedure"}
