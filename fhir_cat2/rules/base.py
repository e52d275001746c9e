"""What every part of the rules table is built from: the frozen model, code references, bands, years and
quality-data codes.

The table's models are split by what they describe: ``schema`` (the table itself: measurements, code rules),
``criteria_schema`` (the criteria language), ``measure_schema`` (measures, groups, populations); all of them
build on this module, which builds on none of them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..terminology import normalise_system


class TableModel(BaseModel):
    """A model of the rules table: frozen, and a key it does not know is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_code_ref(text: str) -> tuple[str, str]:
    """'loinc#8480-6' or 'http://loinc.org#8480-6' -> (canonical system, code)."""
    system, sep, code = text.rpartition("#")
    if not sep or not system or not code:
        raise ValueError(f"'{text}' is not 'system#code' (e.g. loinc#8480-6)")
    return normalise_system(system), code


def check_code_refs(value: tuple[str, ...]) -> tuple[str, ...]:
    for text in value:
        parse_code_ref(text)
    return value


class CodeRefs(TableModel):
    """Codes given inline (``system#code``) and/or by value set (OID or canonical URL)."""

    codes: tuple[str, ...] = ()
    valuesets: tuple[str, ...] = ()

    @field_validator("codes")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_code_refs(value)


def parse_years(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{4})\s*-\s*(\d{4})\s*", value)
        if not match:
            raise ValueError(f"'{value}' is not a year range like 2019-2025")
        first, last = int(match.group(1)), int(match.group(2))
        if last < first:
            raise ValueError(f"year range {value} ends before it starts")
        return tuple(range(first, last + 1))
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return tuple(sorted(set(value)))
    raise ValueError("years must be a year, a list of years, or a range like 2019-2025")


Years = Annotated[tuple[int, ...], Field(min_length=1)]


class Band(TableModel):
    """An interval of values: any of lt, le, gt, ge (in the measurement's unit)."""

    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Band:
        if self.lt is None and self.le is None and self.gt is None and self.ge is None:
            raise ValueError("a band needs at least one of lt, le, gt, ge")
        if self.lt is not None and self.le is not None:
            raise ValueError("give lt or le, not both")
        if self.gt is not None and self.ge is not None:
            raise ValueError("give gt or ge, not both")
        low, high = self.low, self.high
        if (
            low[0] is not None
            and high[0] is not None
            and (low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1])))
        ):
            raise ValueError("band is empty: its lower bound is above its upper bound")
        return self

    @property
    def low(self) -> tuple[float | None, bool]:
        """(bound, inclusive)."""
        return (self.ge, True) if self.ge is not None else (self.gt, False)

    @property
    def high(self) -> tuple[float | None, bool]:
        return (self.le, True) if self.le is not None else (self.lt, False)

    def contains(self, value: float) -> bool:
        if self.lt is not None and not value < self.lt:
            return False
        if self.le is not None and not value <= self.le:
            return False
        if self.gt is not None and not value > self.gt:
            return False
        return not (self.ge is not None and not value >= self.ge)

    def overlaps(self, other: Band) -> bool:
        def below(high: tuple[float | None, bool], low: tuple[float | None, bool]) -> bool:
            if high[0] is None or low[0] is None:
                return False
            return high[0] < low[0] or (high[0] == low[0] and not (high[1] and low[1]))

        return not (below(self.high, other.low) or below(other.high, self.low))

    def describe(self) -> str:
        parts = []
        for op, value in (("<", self.lt), ("<=", self.le), (">", self.gt), (">=", self.ge)):
            if value is not None:
                parts.append(f"{op} {value:g}")
        return " and ".join(parts)


def check_deviation_names(value: dict[str, Any]) -> dict[str, Any]:
    from ..deviations import DEVIATIONS

    unknown = sorted(set(value) - set(DEVIATIONS))
    if unknown:
        raise ValueError(
            f"unknown deviation(s) {', '.join(unknown)} (known: {', '.join(sorted(DEVIATIONS))})"
        )
    return value


_QDC_RE = re.compile(r"^(\d{4}F|[A-Z]\d{4})((?:-[0-9A-Z]{2})*)$")


def parse_qdc(text: str) -> tuple[str, tuple[str, ...]]:
    """'1123F-8P' -> ('1123F', ('8P',))."""
    match = _QDC_RE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a quality-data code like G8752, 3017F or 1123F-8P")
    modifiers = tuple(m for m in match.group(2).split("-") if m)
    return match.group(1), modifiers
