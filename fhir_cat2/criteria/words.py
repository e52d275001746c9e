"""The words of the why: pure functions from what was judged to text.

A trail's words are written only when something reads them (``Trail.later``): each ``*_words`` function
returns (label, because) from the data the judge kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date

from ..findings import Trail
from ..rules.criteria_schema import (
    AgeCriterion,
    DeceasedCriterion,
    ExistsCriterion,
    LatestDayCriterion,
    ReadingsCriterion,
    Window,
)
from ..rules.facts import Reading
from ..rules.timing import DateExpr, Scope, Span
from ..sources.records import EncounterRecord, ObservationRecord, ResourceRecord
from .spans import SEVERAL, distinct_end_days, every_span, span

Why = str | Callable[[], str]
"""Why a record did not match: the words, or a function that writes them."""


def joined(children: list[Trail], word: str) -> str:
    text = word.join(c.label for c in children)
    return text if len(text) <= 160 else text[:157] + "..."


def all_words(label: str | None, children: list[Trail]) -> tuple[str, str]:
    failed = [c.label for c in children if not c.met]
    because = "not met: " + "; ".join(failed) if failed else "all hold"
    return label or joined(children, " and "), because


def any_words(label: str | None, children: list[Trail]) -> tuple[str, str]:
    held = [c.label for c in children if c.met]
    because = "holds: " + "; ".join(held) if held else "none holds"
    return label or joined(children, " or "), because


def not_words(label: str | None, child: Trail) -> tuple[str, str]:
    because = f"'{child.label}' {'holds' if child.met else 'does not hold'}"
    return label or f"not: {child.label}", because


def population_words(label: str | None, population: str, member: bool) -> tuple[str, str]:
    return label or f"in {population}", f"{'in' if member else 'not in'} {population}"


def relabelled(label: str, trail: Trail) -> tuple[str, str]:
    return label, trail.because


def age_words(
    spec: AgeCriterion,
    label: str | None,
    unknown: str | None,
    age: int = 0,
    at: date | None = None,
    birth: date | None = None,
) -> tuple[str, str]:
    """``unknown``: why the age could not be judged; else the age on the day ``at``."""
    if spec.equals is not None:
        bounds = f"exactly {spec.equals}"
    elif spec.max is None:
        bounds = f"{spec.min or 0} or older"
    elif spec.min is None:
        bounds = f"{spec.max} or younger"
    else:
        bounds = f"{spec.min}-{spec.max}"
    months = " months" if spec.unit == "months" else ""
    title = label or f"age {bounds}{months} at {spec.at.text}"
    if unknown is not None:
        return title, unknown
    assert at is not None and birth is not None
    return title, f"age {age}{months} on {at.isoformat()} (born {birth.isoformat()})"


def deceased_words(
    spec: DeceasedCriterion, label: str | None, died: date | None, by: date | None
) -> tuple[str, str]:
    title = label or f"died by {spec.by.text}"
    if by is None:
        return title, f"{spec.by.text} is not known"
    if died is None:
        return title, "no date of death documented"
    shown = "on or before" if died <= by else "after"
    return title, f"died {died.isoformat()}, {shown} {by.isoformat()}"


def age_note(age: int, at: date) -> str:
    return f"age {age} on {at.isoformat()}"


def readings_words(
    spec: ReadingsCriterion,
    label: str | None,
    days: tuple[date, date] | None,
    found: list[Reading],
    between: list[Reading],
) -> tuple[str, str]:
    title = (
        label
        or spec.label
        or f"a {spec.measurement} reading" + (f" {spec.band.describe()}" if spec.band else "")
    )
    if days is None:
        return title, f"window {spec.within.describe()} is not known"
    shown = f"{days[0].isoformat()}..{days[1].isoformat()}"
    if len(found) >= spec.min_count:
        return title, f"{len(found)} reading(s) in {shown}"
    others = [r for r in between if r.value is not None]
    because = (
        f"no {spec.measurement} reading" + (f" {spec.band.describe()}" if spec.band else "") + f" in {shown}"
    )
    if others:
        because += " (readings: " + ", ".join(f"{r.value:g} on {r.day.isoformat()}" for r in others[:5]) + ")"
    return title, because


def _latest_title(spec: LatestDayCriterion, label: str | None) -> str:
    return label or spec.label or f"latest day with {' and '.join(spec.measurements)}"


def unknown_window_words(spec: LatestDayCriterion, label: str | None) -> tuple[str, str]:
    return _latest_title(spec, label), f"window {spec.within.describe()} is not known"


def no_common_day_words(
    spec: LatestDayCriterion, label: str | None, start: date, end: date
) -> tuple[str, str]:
    because = (
        f"no day in {start.isoformat()}..{end.isoformat()} has "
        + " and ".join(spec.measurements)
        + (" (counted as met)" if spec.if_none else "")
    )
    return _latest_title(spec, label), because


def lowest_words(
    spec: LatestDayCriterion, label: str | None, latest: date, picks: list[tuple[str, Reading | None, bool]]
) -> tuple[str, str]:
    results = []
    for name, picked, ok in picks:
        if picked is None:
            results.append(f"{name} has a result without a usable value")
        else:
            shown = f"{picked.value:g} {picked.unit} {'is' if ok else 'is not'} {spec.test[name].describe()}"
            results.append(f"lowest {name} {shown}")
    return _latest_title(spec, label), f"most recent day {latest.isoformat()}: " + "; ".join(results)


def no_reading_words(spec: LatestDayCriterion, label: str | None, days: tuple[date, date]) -> tuple[str, str]:
    shown = f"{days[0].isoformat()}..{days[1].isoformat()}"
    return _latest_title(spec, label), f"no {' or '.join(spec.measurements)} reading in {shown}"


def last_words(
    spec: LatestDayCriterion, label: str | None, last: Reading, picks: list[tuple[str, Reading | None, bool]]
) -> tuple[str, str]:
    results = []
    for name, picked, ok in picks:
        if picked is None:
            results.append(f"{name} not in the last reading")
        else:
            results.append(
                f"{name} {picked.value:g} {picked.unit} {'is' if ok else 'is not'} "
                f"{spec.test[name].describe()}"
            )
    when = last.instant.isoformat() if last.instant else last.day.isoformat()
    return _latest_title(spec, label), f"last reading {when}: " + "; ".join(results)


def does_not_hold(trail: Trail) -> str:
    return f"'{trail.label}' does not hold"


def describe(record: ResourceRecord, timing_of: str = "default") -> str:
    if timing_of in SEVERAL:  # every one of its times (any may be the one that matched)
        when = "; ".join(_when(applies) for applies in every_span(record, timing_of))
    else:
        applies = span(record, timing_of)
        when = _when(applies) if applies is not None else ""
    mapped = record.mappings
    codes = sorted(record.primary_codes - {m.target for m in mapped})  # as documented: mapped codes apart
    code = codes[0][1] if codes else "?"
    status = record.status_code or ""
    parts = [f"code {code}"]
    parts.extend(f"code {mapping.describe()}" for mapping in mapped)
    if status:
        parts.append(f"status {status}")
    if isinstance(record, EncounterRecord) and record.class_code:
        parts.append(f"class {record.class_code}")
    if when:
        parts.append(when)
    if isinstance(record, ObservationRecord) and record.has_value:
        parts.append("value " + record.shown_value)
    reasons = record.reasons
    if reasons:
        parts.append("reason " + ",".join(sorted(c for _, c in reasons)))
    return ", ".join(parts)


def _when(applies: Span) -> str:
    when = applies.start.isoformat() if applies.start else "(start unknown)"
    if applies.end is None:
        when += "..(ongoing)"
    elif applies.end == date.max:  # a period without an end (CQL: a closed null bound is the maximum)
        when += "..(open)"
    elif applies.end != applies.start:
        when += f"..{applies.end.isoformat()}"
    return when


def exists_words(
    spec: ExistsCriterion,
    label: str | None,
    scope: Scope,
    matched: list[ResourceRecord],
    misses: list[tuple[Why, int]],
    total: float | None = None,
    covered: int | None = None,
) -> tuple[str, str]:
    title = label or spec.label or f"{spec.resource} in {list(spec.valuesets) or list(spec.codes)}"
    if spec.cumulative_days is not None and matched:
        test = spec.cumulative_days
        low, high = test.within.resolve(scope)
        shown = f"{low.isoformat()}..{high.isoformat()}" if low and high else test.within.describe()
        noun = spec.resource if len(matched) == 1 else f"{spec.resource}s"
        return title, (
            f"{len(matched)} matching {noun} covering {covered or 0} days of {shown}"
            f" (needs {test.band.describe()})"
        )
    if spec.total_days_supplied is not None and matched:
        supplied = "unknown" if total is None else f"{total:g}"
        band = spec.total_days_supplied.describe()
        noun = spec.resource if len(matched) == 1 else f"{spec.resource}s"
        return title, f"{len(matched)} matching {noun} supplying {supplied} days in all (needs {band})"
    where = f" {describe_timing(spec.timing, scope)}" if spec.timing is not None else ""
    if spec.is_ is not None:
        where = f" (the {spec.is_} itself){where}"
    if spec.other_than is not None:
        where = f" (other than the {spec.other_than}){where}"
    if spec.refers_to is not None:
        where = f" (based on the {spec.refers_to}){where}"
    days = distinct_end_days(matched, spec.timing_of)
    need = max(spec.min_count, 1)
    if len(matched) >= need and len(days) >= spec.min_distinct_days:
        noun = spec.resource if len(matched) == 1 else f"{spec.resource}s"
        because = f"{len(matched)} matching {noun}{where}"
        if spec.latest_only:
            because = f"the latest matching {spec.resource}{where} passes"
        elif spec.earliest_only:
            because = f"the earliest matching {spec.resource}{where} passes"
        return title, because
    if matched:
        if len(matched) < need:
            because = f"{len(matched)} matching {spec.resource}{where}; {need} needed"
        else:
            because = (
                f"{len(matched)} matching {spec.resource}{where} on {len(days)} day(s);"
                f" {spec.min_distinct_days} different days needed"
            )
        return title, because
    because = f"no matching {spec.resource}{where}"
    if misses:
        counted: Counter[str] = Counter()
        for why, n in misses:
            counted[why if isinstance(why, str) else why()] += n
        shown = "; ".join(f"{n} {why}" for why, n in counted.most_common(4))
        because += f" (with a matching code: {shown})"
    return title, because


def describe_not(timing: tuple[str, Window | DateExpr], scope: Scope) -> str:
    return f"not {describe_timing(timing, scope)}"


def describe_timing(timing: tuple[str, Window | DateExpr] | None, scope: Scope) -> str:
    if timing is None:
        return ""
    relation, value = timing
    words = relation.replace("_", " ")
    if isinstance(value, DateExpr):
        day = value.resolve(scope)
        return f"{words.replace(' by', ' on or before')} {day.isoformat() if day else value.text}"
    low, high = value.resolve(scope)
    shown_low = low.isoformat() if low else value.start.text
    shown_high = high.isoformat() if high else value.end.text
    return f"{words} {shown_low}..{shown_high}"
