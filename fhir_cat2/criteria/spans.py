"""When a record applies, as criteria read it: the one field accessor that needs more than a record (which
time a criterion's ``timing_of`` reads, and QI-Core's prevalence interval for a Condition). The others are
properties of the records (``sources/records.py``)."""

from __future__ import annotations

from datetime import date

from ..rules.timing import Span
from ..sources.records import ConditionRecord, EncounterRecord, EventRecord, ResourceRecord, When

CONDITION_ACTIVE = frozenset({"active", "recurrence", "relapse"})
SEVERAL = frozenset({"dosages"})
"""Timings under which a record has several times: a relation holds when it holds for one
(``every_span``)."""


def span(record: ResourceRecord, timing_of: str = "default") -> Span | None:
    """When the resource applies, as the measure logic reads it; None when it has no usable date.

    Conditions use QICoreCommon prevalenceInterval: from onset; while active (or relapse/recurrence) with no
    abatement it is ongoing (open end); an inactive Condition (or one without a clinicalStatus) without an
    abatement date has none: its branch is a query over ``end of abatementInterval()``, which returns null
    when its source is null (fqm-execution: a resolved intussusception without abatement does not start in
    CMS117's first two years, an active one does). ``timing_of: recorded``: the recordedDate, else the onset
    (a point).
    """
    if isinstance(record, ConditionRecord):
        if timing_of == "recorded":  # Coalesce(recordedDate, start of prevalenceInterval()): a point
            has_prevalence = record.abatement is not None or record.clinical_status in CONDITION_ACTIVE
            at = record.recorded or (record.onset if has_prevalence else None)
            if at is None:
                return None
            return Span(at.start_day, at.start_day, at.instant, at.instant, record.ref)
        onset = record.onset
        start = onset.start_day if onset else None
        start_instant = onset.instant if onset else None
        abatement = record.abatement
        if abatement is not None:  # an abatementDateTime ends at its instant
            end_instant = abatement.end_instant or abatement.instant
            return Span(start, abatement.end_day, start_instant, end_instant, record.ref)
        if record.clinical_status in CONDITION_ACTIVE:
            return Span(start, None, start_instant, None, record.ref)
        return None  # the CQL's prevalenceInterval() is null
    when = record.time_of(timing_of)
    if when is None:
        return None
    return _span_of(record, when)


def every_span(record: ResourceRecord, timing_of: str) -> tuple[Span, ...]:
    """Every time the record applies under a timing of ``SEVERAL`` (``dosages``: each dosage's bounds
    period), else its one ``span`` (none without a date)."""
    if timing_of == "dosages" and isinstance(record, EventRecord):
        return tuple(_span_of(record, when) for when in record.dosages)
    one = span(record, timing_of)
    return () if one is None else (one,)


def _span_of(record: ResourceRecord, when: When) -> Span:
    if (when.end_instant is None and not when.is_single_day) or isinstance(record, EncounterRecord):
        return Span(when.start_day, when.end_day, when.instant, when.end_instant, record.ref)  # end unknown
    return Span(when.start_day, when.end_day, when.instant, when.end_instant or when.instant, record.ref)


def distinct_end_days(records: list[ResourceRecord], timing_of: str) -> set[date | None]:
    """The days the records end on (``min_distinct_days``)."""
    return {(span(r, timing_of) or Span(None, None)).end for r in records}
