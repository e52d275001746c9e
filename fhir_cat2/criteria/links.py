"""Links between a candidate record and a resource bound by an enclosing ``exists``: which records an
``exists`` may consider, by identity rather than by code or time.

- ``other_than: NAME``: any record but the one bound as NAME (the CQL's ``X.id !~ Bound.id``, CMS137's
  telehealth visit that is not the episode's own encounter);
- ``refers_to: NAME``: only records whose ``basedOn`` refers to the resource bound as NAME (the CQL's
  ``Bound.id in (X.basedOn B return B.reference.getId())``, CMS50's consultant report Task based on the
  referral);
- ``part_of: any | NAME`` (Observation): ``any``: its partOf refers to something. This is how the published
  CQL of CMS646 behaves, as cql-execution runs it: ``StagingObservation.partOf R return (<the staging> where
  id = R's id)`` is a list, and ``is not null`` holds for every list, empty of matches or not; only an
  Observation without partOf makes the query over it null. ``NAME``: its partOf refers to the resource bound
  as NAME (what such CQL means to ask). Unlike the two above, a failed ``part_of`` is a reason the explain
  trail shows, not a record left out of the candidates.

``is: NAME`` (keep only the bound resource) is the fourth such link, tested in ``judge.py`` itself.
A reference is matched as the reader resolved it (``Type/id``, a contained or ``urn:uuid:`` one resolved to
its target): the CQL compares the id alone, so a basedOn naming the same id under another type would count
there and not here.
"""

from __future__ import annotations

from ..rules.criteria_schema import ExistsCriterion
from ..rules.timing import Scope
from ..sources.records import EventRecord, ObservationRecord, ResourceRecord

ANY = "any"


class Links:
    """The identity tests of one ``exists`` in one scope (the bound resources resolved once)."""

    __slots__ = ("based_on", "other_than")

    def __init__(self, other_than: str | None, based_on: str | None) -> None:
        self.other_than = other_than
        """The reference of the record to leave out."""
        self.based_on = based_on
        """The reference a record's basedOn must hold ('' when the bound resource has none: nothing can)."""

    def admits(self, record: ResourceRecord) -> bool:
        if self.other_than is not None and record.ref == self.other_than:
            return False
        if self.based_on is not None:
            return (
                bool(self.based_on) and isinstance(record, EventRecord) and self.based_on in record.based_on
            )
        return True


def links_of(spec: ExistsCriterion, scope: Scope) -> Links | None:
    """The identity tests of ``spec`` in ``scope``; None when it has none (the common case)."""
    if spec.other_than is None and spec.refers_to is None:
        return None
    other = scope.span(spec.other_than).ref if spec.other_than is not None else None
    based_on = None
    if spec.refers_to is not None:
        based_on = scope.span(spec.refers_to).ref or ""
    return Links(other, based_on)


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
