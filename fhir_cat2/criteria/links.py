"""Links between resources that an ``exists`` can require: an Observation that is part of an event.

``part_of: any``: the Observation's partOf refers to something. This is how the published CQL of CMS646
behaves, as cql-execution runs it: ``StagingObservation.partOf R return (<the staging> where id = R's id)`` is
a list, and ``is not null`` holds for every list, empty of matches or not; only an Observation without partOf
makes the query over it null. ``part_of: NAME``: its partOf refers to the resource bound as NAME (what such
CQL means to ask).
"""

from __future__ import annotations

from ..rules.timing import Scope
from ..sources.records import ObservationRecord, ResourceRecord

ANY = "any"


def part_of_target(part_of: str, scope: Scope) -> str | None:
    """The reference (Type/id) a ``part_of: NAME`` test asks for; None for ``any``."""
    return None if part_of == ANY else scope.span(part_of).ref


def part_of_why(record: ResourceRecord, part_of: str, target: str | None) -> str | None:
    """Why ``record`` fails the ``part_of`` test, or None when it passes."""
    links = record.part_of if isinstance(record, ObservationRecord) else ()
    if part_of == ANY:
        return None if links else "is part of nothing (no partOf)"
    if target is not None and target in links:
        return None
    return f"is not part of the {part_of}"
