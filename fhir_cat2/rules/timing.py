"""Date expressions of the rules table: ``period.start``, ``period.end-9y``, ``period.start+6mo``, ``-14d``."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

_EXPR = re.compile(r"^\s*(period\.start|period\.end)\s*((?:[+-]\s*\d+\s*(?:y|mo|d)\s*)*)$")
_TERM = re.compile(r"([+-])\s*(\d+)\s*(y|mo|d)")


class DateExpr(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    anchor: Literal["period.start", "period.end"]
    years: int = 0
    months: int = 0
    days: int = 0

    def resolve(self, period_start: date, period_end: date) -> date:
        base = period_start if self.anchor == "period.start" else period_end
        return shift(base, self.years, self.months, self.days)


def shift(day: date, years: int = 0, months: int = 0, days: int = 0) -> date:
    """Calendar arithmetic as CQL does it: add years and months (clamping the day), then days."""
    month_index = day.year * 12 + (day.month - 1) + years * 12 + months
    year, month = divmod(month_index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last)) + timedelta(days=days)


def parse_date_expr(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise ValueError("a date expression is text like period.start or period.end-9y")
    match = _EXPR.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a date expression like period.start, period.end-9y or period.start+6mo")
    result: dict[str, Any] = {"text": text.replace(" ", ""), "anchor": match.group(1)}
    totals = {"y": 0, "mo": 0, "d": 0}
    for sign, amount, unit in _TERM.findall(match.group(2)):
        totals[unit] += int(amount) if sign == "+" else -int(amount)
    result.update(years=totals["y"], months=totals["mo"], days=totals["d"])
    return result
