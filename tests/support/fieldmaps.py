"""Checking a field map's fast reader against its pydantic validation model: what the reader accepts, the
model accepts too and reads the same way; what it declines, the model names or reads."""

from __future__ import annotations

import dataclasses
from typing import Any

from fhir_cat2.errors import InputError
from fhir_cat2.sources import readers
from fhir_cat2.sources.fields import READERS, to_record
from fhir_cat2.sources.records import Src
from fhir_cat2.sources.values import Resolver, plain_resolver


def same(a: Any, b: Any) -> bool:
    """Deep equality that also tells 1 from 1.0 and True from 1 (== does not)."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, frozenset | set):
        return a == b and all(any(same(x, y) for y in b) for x in a)
    return bool(a == b)


def check_reader(resource: dict[str, Any], resolve: Resolver = plain_resolver, resource_id: str = "x") -> str:
    """The fast reader and the validation model on one resource: "fast" when the reader took it, "declined"
    when it left it to the model; fails the test when they disagree."""
    src = Src("test", "entry[0]")
    reader = READERS[resource["resourceType"]]
    try:
        record = reader.read(resource, src, resolve, resource_id)
    except (readers.Unexpected, InputError):
        record = None
    if record is not None:
        # pydantic accepts it, and its exact JSON dump reads as the same record: nothing was coerced
        normal = reader.model.model_validate(resource).model_dump(by_alias=True, exclude_none=True)
        again = reader.read(normal, src, resolve, resource_id)
        assert same(record, again), f"records differ:\n as sent    {record}\n as pydantic {again}"
        assert same(to_record(resource, src, resolve, resource_id), record)
        return "fast"
    try:
        to_record(resource, src, resolve, resource_id)  # read through the model, or rejected by it
    except InputError as exc:
        message = str(exc)
        assert message.startswith(f"{resource['resourceType']}/{resource_id}"), message
        assert "cannot name" not in message, f"the reader and the model disagree: {message}"
    return "declined"
