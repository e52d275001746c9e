"""The facts criteria are judged on: one patient's record and readings (possibly as of a day), with what
has been worked out about them so far (judged criteria, requirements, record pools and spans)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..contexts import PatientContext
from ..rules.facts import Readings
from ..rules.timing import Span
from ..sources.records import Code, ResourceRecord
from .spans import span

if TYPE_CHECKING:
    from .plan import Need

_UNSEEN: Any = object()


@dataclass
class Facts:
    """What criteria read: the patient's record and readings (possibly as of a day).

    ``memo`` holds criteria already judged on these facts, by criterion and the anchors it reads: an
    encounter-based measure asks the same questions of the same encounters many times over.
    """

    ctx: PatientContext
    readings: Readings
    memo: dict[Any, Any] = field(default_factory=dict)
    possible: dict[Need, bool] = field(default_factory=dict)
    """Per static requirement (see ``Need``): whether the record holds anything that could meet it."""
    spans: dict[int, Span | None] = field(default_factory=dict)
    """When each record applies (``span``, default timing), by record id: shared by the facts of one patient
    as of any day, which hold the same records."""

    pools: dict[tuple[str, frozenset[Code]], list[ResourceRecord]] = field(default_factory=dict)
    """Records of a type with one of the codes (``pool``), by (type, codes)."""
    pool_spans: dict[tuple[int, str], list[Span | None]] = field(default_factory=dict)
    """When each record of a pool applies (``spans_of``), by the pool's id and the timing read."""

    def pool(self, resource_type: str, codes: frozenset[Code]) -> list[ResourceRecord]:
        """The records an ``exists`` looks at: of the type, with one of ``codes`` when given (not to be
        changed: the same exists is asked of many encounters)."""
        found = self.pools.get((resource_type, codes))
        if found is None:
            found = self.ctx.with_codes(resource_type, codes) if codes else self.ctx.resources(resource_type)
            self.pools[(resource_type, codes)] = found
        return found

    def spans_of(self, pool: list[ResourceRecord], timing_of: str) -> list[Span | None]:
        """``span`` of every record of a ``pool`` (many exists read one pool: the same encounters)."""
        found = self.pool_spans.get((id(pool), timing_of))
        if found is None:
            found = self.pool_spans[(id(pool), timing_of)] = [self.span(r, timing_of) for r in pool]
        return found

    def span(self, record: ResourceRecord, timing_of: str = "default") -> Span | None:
        if timing_of != "default":
            return span(record, timing_of)
        found = self.spans.get(id(record), _UNSEEN)
        if found is _UNSEEN:
            found = self.spans[id(record)] = span(record)
        return found  # type: ignore[no-any-return]
