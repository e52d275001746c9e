"""Date expressions of the rules table and the scope they are resolved in.

A date expression is an anchor plus offsets: ``period.start``, ``period.end-9y``, ``period.start+6mo``,
``encounter.start-14d``, ``visit.end+2d``. Anchors:

- ``period.start`` / ``period.end``: the measurement period (always bound);
- ``encounter.start`` / ``encounter.end``: the encounter a code rule is judged on, or the episode of an
  encounter-based measure;
- ``<name>.start`` / ``<name>.end``: a resource bound by an enclosing ``exists`` (``as: <name>``; ``this`` by
  default) while its ``where`` / ``then`` criteria are evaluated;
- ``birth.start`` / ``birth.end``: the patient's birth date (``birth.start+42d``, ``birth.start+2y``: CQL's
  ``Patient.birthDate + 2 years``), bound wherever criteria are judged (measures, claims, code rules);
  unknown without a birthDate (a window from it then holds nothing).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

_EXPR = re.compile(r"^\s*([a-z][a-z0-9_]*)\.(start|end)\s*((?:[+-]\s*\d+\s*(?:y|mo|d)\s*)*)$")
_TERM = re.compile(r"([+-])\s*(\d+)\s*(y|mo|d)")
_UNSEEN: Any = object()


class DateExpr(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    anchor: str
    """'period', 'encounter', or the name of a bound resource."""
    edge: Literal["start", "end"]
    years: int = 0
    months: int = 0
    days: int = 0

    @property
    def has_offset(self) -> bool:
        return bool(self.years or self.months or self.days)

    def resolve(self, scope: Scope) -> date | None:
        """The calendar day; None when the anchor's edge is unknown (e.g. a Condition without onset)."""
        days = scope.days
        found = days.get(self.text, _UNSEEN)  # the text says all the expression means
        if found is _UNSEEN:
            span = scope.span(self.anchor)
            day = span.start if self.edge == "start" else span.end
            found = days[self.text] = None if day is None else shift(day, self.years, self.months, self.days)
        return found  # type: ignore[no-any-return]

    def resolve_instant(self, scope: Scope) -> datetime | None:
        instants = scope.instants
        found = instants.get(self.text, _UNSEEN)
        if found is _UNSEEN:
            span = scope.span(self.anchor)
            instant = span.start_instant if self.edge == "start" else span.end_instant
            found = instants[self.text] = (
                None if instant is None else shift_instant(instant, self.years, self.months, self.days)
            )
        return found  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def shift(day: date, years: int = 0, months: int = 0, days: int = 0) -> date:
    """Calendar arithmetic as CQL does it: add years and months (clamping the day), then days."""
    if not (years or months):
        return day + timedelta(days=days) if days else day
    month_index = day.year * 12 + (day.month - 1) + years * 12 + months
    year, month = divmod(month_index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last)) + timedelta(days=days)


def shift_instant(instant: datetime, years: int = 0, months: int = 0, days: int = 0) -> datetime:
    if not (years or months or days):
        return instant
    moved = shift(instant.date(), years, months, days)
    return instant.replace(year=moved.year, month=moved.month, day=moved.day)


def parse_date_expr(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise ValueError("a date expression is text like period.start or period.end-9y")
    match = _EXPR.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a date expression like period.start, period.end-9y or encounter.start-14d"
        )
    result: dict[str, Any] = {"text": text.replace(" ", ""), "anchor": match.group(1), "edge": match.group(2)}
    totals = {"y": 0, "mo": 0, "d": 0}
    for sign, amount, unit in _TERM.findall(match.group(3)):
        totals[unit] += int(amount) if sign == "+" else -int(amount)
    result.update(years=totals["y"], months=totals["mo"], days=totals["d"])
    return result


@lru_cache(maxsize=4096)
def birth_span(birth: date | None) -> Span:
    if birth is None:
        return Span(None, None)
    return Span(birth, birth, datetime(birth.year, birth.month, birth.day, tzinfo=UTC), None)


@lru_cache(maxsize=64)
def period_span(start: date, end: date) -> Span:
    return Span(start, end, datetime(start.year, start.month, start.day, tzinfo=UTC), None)


class Span:
    """When a bound thing applies: first and last day, and instants when known.

    Not to be changed once made. Spans key the memo of judged criteria (one verdict per encounter), so their
    hash is worked out once, when made. ``ref``: the resource (Type/id) the span is of, when it is one's: two
    resources of the same time are two bindings (``is: NAME`` tests the resource itself).
    """

    __slots__ = ("_hash", "end", "end_instant", "ref", "start", "start_instant")

    def __init__(
        self,
        start: date | None,
        end: date | None,
        start_instant: datetime | None = None,
        end_instant: datetime | None = None,
        ref: str | None = None,
    ) -> None:
        self.start = start
        self.end = end
        self.start_instant = start_instant
        self.end_instant = end_instant
        self.ref = ref
        self._hash = hash((start, end, start_instant, end_instant, ref))

    def _fields(self) -> tuple[date | None, date | None, datetime | None, datetime | None, str | None]:
        return (self.start, self.end, self.start_instant, self.end_instant, self.ref)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Span):
            return NotImplemented
        return self is other or (self._hash == other._hash and self._fields() == other._fields())

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return (
            f"Span(start={self.start!r}, end={self.end!r}, start_instant={self.start_instant!r},"
            f" end_instant={self.end_instant!r}, ref={self.ref!r})"
        )


class UnboundAnchor(KeyError):
    pass


class Scope:
    """What date expressions resolve against: the period, bound resources, and the data cut-off.

    ``as_of``: only what was documented on or before this day exists (a claim reports what was known at its
    encounter). None: everything in the input.

    Not to be changed once made (``bind`` makes a new one): a plain class, as a scope is made for every
    resource an ``exists`` binds, and a frozen dataclass is slow to make.
    """

    __slots__ = ("as_of", "bindings", "birth", "days", "instants", "period_end", "period_start", "windows")

    def __init__(
        self,
        period_start: date,
        period_end: date,
        bindings: Mapping[str, Span] | None = None,
        as_of: date | None = None,
        birth: date | None = None,
    ) -> None:
        self.birth = birth
        """The patient's birth date (anchor ``birth``); None: not known."""
        self.period_start = period_start
        self.period_end = period_end
        self.bindings: Mapping[str, Span] = bindings if bindings is not None else {}
        self.as_of = as_of
        self.days: dict[str, date | None] = {}
        """Date expressions already resolved in this scope, by their text (a scope is judged many times
        over)."""
        self.instants: dict[str, datetime | None] = {}
        self.windows: dict[str, Any] = {}
        """Time windows of ``exists`` already resolved (days and instants of both ends), by their text."""

    def __repr__(self) -> str:
        return f"Scope({self.period_start}, {self.period_end}, {dict(self.bindings)}, as_of={self.as_of})"

    def span(self, name: str) -> Span:
        if name == "period":
            return period_span(self.period_start, self.period_end)
        if name == "birth":
            return birth_span(self.birth)
        try:
            return self.bindings[name]
        except KeyError:
            raise UnboundAnchor(name) from None

    def bind(self, name: str, span: Span) -> Scope:
        bindings = dict(self.bindings)
        bindings[name] = span
        return Scope(self.period_start, self.period_end, bindings, self.as_of, self.birth)

    @property
    def period(self) -> tuple[date, date]:
        return self.period_start, self.period_end
