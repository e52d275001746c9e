"""Cumulative medication duration, as the CQL library CumulativeMedicationDuration 4.1.000 computes it.

Pure functions of supply periods (``EventRecord.supply``: medicationRequestPeriod / medicationDispensePeriod,
read by the field map): ``rollout`` (``rolloutIntervals``: overlapping periods laid end to end, in start
order), ``covered_days`` (each period intersected with a window, then ``cumulativeDuration``: collapsed per
day and their days summed), and ``cumulative_days``, what an exists's ``cumulative_days`` test reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from ..sources.records import Code, EventRecord, ResourceRecord

Period = tuple[date, date]
"""First and last day, both included (CQL ``Interval<Date>`` closed at both ends)."""

_ONE_DAY = timedelta(days=1)


def rollout(periods: Iterable[Period]) -> list[Period]:
    """The periods laid end to end in start order: each starts on its own start or the day after the one
    before it ends, whichever is later, and keeps its length (CQL ``rolloutIntervals``, whose caller sorts
    by start)."""
    laid: list[Period] = []
    for start, end in sorted(periods):
        if laid and laid[-1][1] + _ONE_DAY > start:
            moved = laid[-1][1] + _ONE_DAY
            laid.append((moved, moved + (end - start)))
        else:
            laid.append((start, end))
    return laid


def covered_days(periods: Iterable[Period], low: date, high: date) -> int | None:
    """Days of ``low..high`` covered by at least one period (each intersected with the window, collapsed per
    day, the days summed: CQL ``cumulativeDuration`` of ``period intersect Interval[low, high]``); None when
    no period meets the window (a Sum of nothing is null)."""
    clipped = sorted(
        (max(start, low), min(end, high)) for start, end in periods if start <= high and end >= low
    )
    if not clipped:
        return None
    total = 0
    run_start, run_end = clipped[0]
    for start, end in clipped[1:]:
        if start > run_end:
            total += (run_end - run_start).days + 1
            run_start, run_end = start, end
        elif end > run_end:
            run_end = end
    return total + (run_end - run_start).days + 1


def supply_periods(records: Iterable[ResourceRecord]) -> list[Period]:
    """The supply periods of the records that have one."""
    found = []
    for record in records:
        supply = record.supply if isinstance(record, EventRecord) else None
        if supply is not None:
            found.append((supply.start_day, supply.end_day))
    return found


def cumulative_days(
    records: Sequence[ResourceRecord],
    low: date,
    high: date,
    rolled: str = "none",
    code_sets: Sequence[frozenset[Code]] = (),
) -> int | None:
    """The days of ``low..high`` the records' supply periods cover (see ``covered_days``), after rolling
    them out: ``none``, ``together`` (one sequence), ``each_code_set`` (one sequence per code set: the
    records with a code of it; a record in two sets is rolled out in both, as in two CQL retrieves)."""
    if rolled == "none":
        periods = supply_periods(records)
    elif rolled == "together":
        periods = rollout(supply_periods(records))
    else:
        periods = []
        for codes in code_sets:
            periods += rollout(supply_periods(r for r in records if not r.primary_codes.isdisjoint(codes)))
    return covered_days(periods, low, high)
