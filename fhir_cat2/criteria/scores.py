"""Score change between two assessments (``score_change``): the CQL's

    from First(...) Baseline, Last(...) FollowUp
      let Change: Baseline.value - FollowUp.value
      where Change >= 3

Each side is an exists criterion that picks one assessment; its score is the assessment's value (of the
criterion's ``value_type``) plus the value of any addend that applies to its code (an item of the same
instrument answered the same day, CMS771). A missing score is the CQL's null: the change is unknown and the
criterion does not hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import Evidence, Trail
from ..rules.criteria_schema import SCORED_ASSESSMENT, ExistsCriterion, ScoreChangeCriterion
from ..rules.timing import Scope, Span
from ..sources.records import ObservationRecord, ResourceRecord
from .facts import Facts
from .words import describe

if TYPE_CHECKING:
    from .judge import Criteria


class Scored:
    """One picked assessment: the record, its score (None: unknown) and why, and the records read."""

    __slots__ = ("note", "parts", "record", "score")

    def __init__(
        self, record: ResourceRecord, score: float | None, note: str, parts: tuple[ResourceRecord, ...]
    ) -> None:
        self.record = record
        self.score = score
        self.note = note
        self.parts = parts


def score_change(
    criteria: Criteria,
    spec: ScoreChangeCriterion,
    label: str | None,
    facts: Facts,
    scope: Scope,
    members: dict[str, bool],
) -> Trail:
    baseline = _pick(criteria, spec, spec.baseline, facts, scope, members)
    if baseline is None:
        return Trail.later(_words, (spec, label, None, None, None), False)
    follow_scope = scope.bind(spec.baseline.as_, _span_of(facts, spec.baseline, baseline.record))
    follow_up = _pick(criteria, spec, spec.follow_up, facts, follow_scope, members)
    parts = baseline.parts + (follow_up.parts if follow_up is not None else ())
    evidence = tuple(Evidence.later(r.ref, describe, r, "default") for r in parts)
    if follow_up is None or baseline.score is None or follow_up.score is None:
        return Trail.later(_words, (spec, label, baseline, follow_up, None), False, evidence)
    if spec.change == "baseline-minus-follow-up":
        change = baseline.score - follow_up.score
    else:
        change = follow_up.score - baseline.score
    met = spec.band.contains(change)
    return Trail.later(_words, (spec, label, baseline, follow_up, change), met, evidence)


def _pick(
    criteria: Criteria,
    spec: ScoreChangeCriterion,
    side: ExistsCriterion,
    facts: Facts,
    scope: Scope,
    members: dict[str, bool],
) -> Scored | None:
    """The one assessment ``side`` picks, scored; None when it matches none."""
    matched, _, _ = criteria.matching(side, facts, scope, members)
    if not matched:
        return None
    record = matched[0]
    score = _value(record, spec.value_type)
    if score is None:
        return Scored(record, None, "no value of type " + spec.value_type, (record,))
    parts: tuple[ResourceRecord, ...] = (record,)
    notes = [f"{score:g}"]
    codes = record.codes if isinstance(record, ObservationRecord) else frozenset()
    for addend in spec.plus:
        if codes.isdisjoint(criteria.ruleset.resolve_codes(addend.for_codes, ())):
            continue
        bound = scope.bind(SCORED_ASSESSMENT, _span_of(facts, side, record))
        found, _, _ = criteria.matching(addend.exists, facts, bound, members)
        if not found:
            return Scored(record, None, f"{score:g} and no {addend.exists.label or 'item'} to add", parts)
        added = _value(found[0], spec.value_type)
        parts += (found[0],)
        if added is None:
            return Scored(record, None, f"{score:g} plus an item without a {spec.value_type} value", parts)
        score += added
        notes.append(f"{added:g}")
    note = " + ".join(notes) + (f" = {score:g}" if len(notes) > 1 else "")
    return Scored(record, score, note, parts)


def _value(record: ResourceRecord, value_type: str) -> float | None:
    if not isinstance(record, ObservationRecord) or record.absent:
        return None
    if value_type == "integer":
        return float(record.value_int) if record.value_int is not None else None
    return record.number


def _span_of(facts: Facts, side: ExistsCriterion, record: ResourceRecord) -> Span:
    return facts.span(record, side.timing_of) or Span(None, None, ref=record.ref)


def _words(
    spec: ScoreChangeCriterion,
    label: str | None,
    baseline: Scored | None,
    follow_up: Scored | None,
    change: float | None,
) -> tuple[str, str]:
    order = "baseline - follow-up" if spec.change == "baseline-minus-follow-up" else "follow-up - baseline"
    title = label or f"score change ({order}) {spec.band.describe()}"
    if baseline is None:
        return title, f"no baseline assessment ({spec.baseline.label or 'baseline'})"
    first = f"baseline {baseline.record.ref} scores {baseline.note}"
    if follow_up is None:
        return title, f"{first}; no follow-up assessment ({spec.follow_up.label or 'follow-up'})"
    second = f"follow-up {follow_up.record.ref} scores {follow_up.note}"
    if change is None:
        return title, f"{first}; {second}: the change is unknown"
    return title, f"{first}; {second}: change {change:g}, needs {spec.band.describe()}"
