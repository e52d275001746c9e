"""Judging ``distinct_days`` criteria: how many different days the records of several exists criteria fall on.

The CQL of the childhood immunization measure pools the dates of an Immunization retrieve and a Procedure
retrieve of one vaccine (``union`` of date lists) and asks for N of them on different days (``Count(distinct
...)``, or a chain of N aliases each ``1 day or more after`` the one before). An exists counts within one
resource type only: this criterion pools the matches of an exists, or of the alternatives of an any-of, and
counts the distinct first days of their times.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ..findings import Evidence, Trail
from ..rules.criteria_schema import DistinctDaysCriterion
from ..rules.loader import pooled_exists
from ..rules.timing import Scope
from ..sources.records import ResourceRecord
from .plan import Node

if TYPE_CHECKING:
    from .facts import Facts
    from .judge import Criteria

MAX_EVIDENCE = 50


def judge_distinct_days(
    criteria: Criteria, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]
) -> Trail:
    spec = node.criterion.distinct_days
    assert spec is not None
    pooled = pooled_exists(spec.of, criteria.ruleset.table.library)
    assert pooled is not None, "checked when the table was loaded"
    days: dict[date, ResourceRecord] = {}
    for exists in pooled:
        matched, _, _ = criteria.matching(exists, facts, scope, members)
        for record in matched:
            applies = facts.span(record, exists.timing_of)
            if applies is not None and applies.start is not None:
                days.setdefault(applies.start, record)
    met = len(days) >= spec.min
    of = spec.of
    shared = criteria.ruleset.table.library.get(of.use) if of.use is not None else None
    of_label = of.label or (of.exists.label if of.exists is not None else None)
    of_label = of_label or (shared.label if shared is not None else None) or of.use
    evidence = tuple(
        Evidence.later(record.ref, _day_note, day) for day, record in sorted(days.items())[:MAX_EVIDENCE]
    )
    about = (spec, node.criterion.label, of_label, sorted(days))
    return Trail.later(distinct_days_words, about, met, evidence)


def _day_note(day: date) -> str:
    return f"on {day.isoformat()}"


def distinct_days_words(
    spec: DistinctDaysCriterion, label: str | None, of_label: str | None, days: list[date]
) -> tuple[str, str]:
    title = label or spec.label or f"{of_label or 'records'}: on {spec.min} or more different days"
    if not days:
        return title, "none found"
    shown = ", ".join(day.isoformat() for day in days[:12]) + (", ..." if len(days) > 12 else "")
    return title, f"{len(days)} different day{'s' if len(days) != 1 else ''} ({shown}), needs {spec.min}"
