"""Comparing the two input paths: ``direct.direct_record`` against ``slim.validated_record``, the
validator of record. The direct path may decline (None) anything; what it accepts must be exactly what
pydantic builds."""

from __future__ import annotations

import dataclasses
from typing import Any

from fhir_cat2.errors import InputError
from fhir_cat2.sources.direct import direct_record
from fhir_cat2.sources.records import Src
from fhir_cat2.sources.slim import validated_record
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


def check_same(resource: dict[str, Any], resolve: Resolver = plain_resolver, resource_id: str = "x") -> str:
    """Both paths on one resource; returns how it went ("direct", "declined") or fails the test."""
    src = Src("test", "entry[0]")
    try:
        reference: Any = validated_record(resource, src, resolve, resource_id)
    except InputError as exc:
        reference = exc
    except Exception as exc:  # whatever else pydantic's path does, the direct path must decline
        reference = exc
    direct = direct_record(resource, src, resolve, resource_id)
    if direct is None:
        return "declined"
    assert not isinstance(reference, Exception), f"direct path accepted what pydantic rejects: {reference}"
    assert same(direct, reference), f"records differ:\n direct   {direct}\n pydantic {reference}"
    return "direct"
