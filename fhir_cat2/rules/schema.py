"""The rules table as pydantic models: measurements, code rules and measure definitions.

A rules table is data (YAML). This module only says what a valid one looks like; ``loader.py`` reads it
and reports problems by file, line and field; ``engine.py`` and ``fhir_cat2.measures`` evaluate it.
Every number from a spec (bands, windows, ages) lives in the table, next to the ``source`` it came from.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..terminology import CPT, HCPCS, normalise_system
from .timing import DateExpr, parse_date_expr

PROGRAMS = ("hedis", "mips-claims")
Program = Literal["hedis", "mips-claims"]
PopulationCode = Literal[
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "denominator-exception",
    "numerator",
    "numerator-exclusion",
]
POPULATION_ORDER: tuple[str, ...] = (
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "denominator-exception",
    "numerator",
    "numerator-exclusion",
)

_CODE_RE = re.compile(r"^(?:\d{4}F|[A-Z]\d{4})$")
_MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_code_ref(text: str) -> tuple[str, str]:
    """'loinc#8480-6' or 'http://loinc.org#8480-6' -> (canonical system, code)."""
    system, sep, code = text.rpartition("#")
    if not sep or not system or not code:
        raise ValueError(f"'{text}' is not 'system#code' (e.g. loinc#8480-6)")
    return normalise_system(system), code


def _years(value: Any) -> tuple[int, ...]:
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


class CodeSet(_Model):
    """Codes given inline (``system#code``) and/or by value set (OID or canonical URL)."""

    codes: tuple[str, ...] = ()
    valuesets: tuple[str, ...] = ()

    @field_validator("codes")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_code_ref(text)
        return value

    @model_validator(mode="after")
    def _non_empty(self) -> CodeSet:
        if not self.codes and not self.valuesets:
            raise ValueError("give at least one of codes or valuesets")
        return self


class Band(_Model):
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
        if low[0] is not None and high[0] is not None and (
            low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))
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


class UnitConversion(_Model):
    """value_in_target_unit = value * factor + offset."""

    factor: float = 1.0
    offset: float = 0.0


class Plausible(_Model):
    min: float
    max: float


ObservationStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
]


class Measurement(CodeSet):
    """A numeric clinical fact read from Observations (standalone, or as a component of a panel)."""

    label: str = Field(max_length=80)
    component_of: tuple[str, ...] = ()
    statuses: tuple[ObservationStatus, ...] = ("final", "amended", "corrected")
    categories: tuple[str, ...] = ()
    category_required: bool = False
    unit: str
    units: dict[str, UnitConversion]
    missing_unit: str | None = None
    plausible: Plausible | None = None
    source: str

    @field_validator("component_of")
    @classmethod
    def _check_panels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_code_ref(text)
        return value

    @model_validator(mode="after")
    def _check_units(self) -> Measurement:
        if self.unit not in self.units:
            raise ValueError(f"units must include the target unit '{self.unit}'")
        if self.missing_unit is not None and self.missing_unit not in self.units:
            raise ValueError(f"missing_unit '{self.missing_unit}' is not one of units")
        return self


Pick = Literal["lowest-of-latest-day", "last-of-latest-day"]


class CodeRule(_Model):
    """One quality-data code and the documented fact on an encounter that earns it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    code: str
    system: str | None = None
    modifiers: tuple[str, ...] = ()
    label: str = Field(max_length=80)
    programs: tuple[Program, ...] = Field(min_length=1)
    years: Years
    measurement: str | None = None
    pick: Pick = "lowest-of-latest-day"
    scope: Literal["encounter", "period-to-date"] = "encounter"
    """encounter: readings attached to the encounter. period-to-date: the patient's readings from the
    start of the measurement period to the encounter's day (for 'most recent result' reporting)."""
    band: Band | None = None
    when_missing: bool = False
    measure: str | None = None
    source: str

    @field_validator("years", mode="before")
    @classmethod
    def _parse_years(cls, value: Any) -> tuple[int, ...]:
        return _years(value)

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value  # YAML reads 3074 as a number

    @field_validator("code")
    @classmethod
    def _check_code(cls, value: str) -> str:
        if not _CODE_RE.match(value):
            raise ValueError(f"'{value}' is not a CPT II (nnnnF) or HCPCS (Annnn) code")
        return value

    @field_validator("modifiers")
    @classmethod
    def _check_modifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for modifier in value:
            if not _MODIFIER_RE.match(modifier):
                raise ValueError(f"'{modifier}' is not a two-character modifier like 8P")
        return value

    @model_validator(mode="after")
    def _check_trigger(self) -> CodeRule:
        if self.measurement is None:
            raise ValueError("a code rule needs a trigger: measurement (with band or when_missing)")
        if self.band is None and not self.when_missing:
            raise ValueError("give band (value range) or when_missing: true")
        if self.band is not None and self.when_missing:
            raise ValueError("give band or when_missing, not both")
        return self

    @property
    def code_system(self) -> str:
        if self.system:
            return normalise_system(self.system)
        return CPT if self.code.endswith("F") else HCPCS


# ----------------------------------------------------------------------------------------------- measures


class Window(_Model):
    """A time window, from two date expressions such as period.start-9y and period.end."""

    start: DateExpr
    end: DateExpr

    def resolve(self, period_start: date, period_end: date) -> tuple[date, date]:
        return self.start.resolve(period_start, period_end), self.end.resolve(period_start, period_end)

    def describe(self) -> str:
        return f"{self.start.text} .. {self.end.text}"


def _window(value: Any) -> Any:
    if value == "period":
        value = ["period.start", "period.end"]
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return {"start": parse_date_expr(value[0]), "end": parse_date_expr(value[1])}
    if isinstance(value, dict):
        return value
    raise ValueError("a window is 'period' or [start, end] like [period.start-9y, period.end]")


WindowField = Annotated[Window, Field()]


class AgeCriterion(_Model):
    min: int | None = None
    max: int | None = None
    at: DateExpr = Field(default_factory=lambda: DateExpr(**parse_date_expr("period.end")))

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        return parse_date_expr(value) if isinstance(value, str) else value


ResourceKind = Literal[
    "Encounter",
    "Condition",
    "Procedure",
    "Immunization",
    "Observation",
    "MedicationRequest",
    "MedicationAdministration",
    "ServiceRequest",
    "DocumentReference",
    "CarePlan",
    "Consent",
    "DeviceRequest",
]


TIMING_RELATIONS = ("during", "overlaps", "starts_during", "ends_during", "starts_by", "ends_by")


class ExistsCriterion(_Model):
    """True when the patient has a matching resource (with a timing relation to a window).

    Timing relations, at day precision: ``during`` (inside the window), ``overlaps``, ``starts_during``,
    ``ends_during`` (windows), and ``starts_by`` / ``ends_by`` (on or before a date).
    """

    resource: ResourceKind
    codes: tuple[str, ...] = ()
    valuesets: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    exclude_statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    value_codes: tuple[str, ...] = ()
    value_valuesets: tuple[str, ...] = ()
    diagnosis_valuesets: tuple[str, ...] = ()
    """Encounter only: one of the encounter's diagnoses (Encounter.diagnosis) is in these value sets."""
    discharge_codes: tuple[str, ...] = ()
    """Encounter only: hospitalization.dischargeDisposition is one of these."""
    exclude_do_not_perform: bool = True
    during: Window | None = None
    overlaps: Window | None = None
    starts_during: Window | None = None
    ends_during: Window | None = None
    starts_by: DateExpr | None = None
    ends_by: DateExpr | None = None
    latest_only: bool = False
    """Judge only the latest matching resource (by its end) before applying the value test."""
    min_distinct_days: int = Field(default=1, ge=1)
    label: str | None = None

    @field_validator("during", "overlaps", "starts_during", "ends_during", mode="before")
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return None if value is None else _window(value)

    @field_validator("starts_by", "ends_by", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        return parse_date_expr(value) if isinstance(value, str) else value

    @field_validator("codes", "value_codes", "discharge_codes")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_code_ref(text)
        return value

    @model_validator(mode="after")
    def _check(self) -> ExistsCriterion:
        if not self.codes and not self.valuesets:
            raise ValueError("give codes or valuesets")
        given = [name for name in TIMING_RELATIONS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one timing relation (found: {', '.join(given)})")
        if (self.diagnosis_valuesets or self.discharge_codes) and self.resource != "Encounter":
            raise ValueError("diagnosis_valuesets and discharge_codes apply to resource Encounter only")
        return self

    @property
    def timing(self) -> tuple[str, Window | DateExpr] | None:
        for name in TIMING_RELATIONS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None


class LatestDayCriterion(_Model):
    """The latest day in the window with a reading of every listed measurement; test the day's picks."""

    measurements: tuple[str, ...] = Field(min_length=1)
    within: Window
    pick: Literal["lowest", "last"] = "lowest"
    test: dict[str, Band]
    exclude_encounter_classes: tuple[str, ...] = ()
    count_valueless: bool = False
    if_none: bool = False
    if_no_value: bool = False
    label: str | None = None

    @field_validator("within", mode="before")
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return _window(value)


class Criterion(_Model):
    """Exactly one of the keys below."""

    all: tuple[Criterion, ...] | None = None
    any: tuple[Criterion, ...] | None = None
    not_: Criterion | None = Field(default=None, alias="not")
    population: PopulationCode | None = None
    age: AgeCriterion | None = None
    gender: tuple[str, ...] | None = None
    exists: ExistsCriterion | None = None
    latest_day: LatestDayCriterion | None = None
    use: str | None = None
    """The name of a criterion in the table's library."""
    label: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> Criterion:
        keys = [
            name
            for name in ("all", "any", "not_", "population", "age", "gender", "exists", "latest_day", "use")
            if getattr(self, name) is not None
        ]
        if len(keys) != 1:
            shown = ", ".join(k.rstrip("_") for k in keys) or "none"
            raise ValueError(
                "a criterion has exactly one of all, any, not, population, age, gender, exists, latest_day, use"
                f" (found: {shown})"
            )
        return self


class Population(_Model):
    id: str
    criteria: Criterion


class MeasureGroup(_Model):
    id: str
    populations: dict[PopulationCode, Population]

    @model_validator(mode="after")
    def _required(self) -> MeasureGroup:
        for code in ("initial-population", "denominator", "numerator"):
            if code not in self.populations:
                raise ValueError(f"group needs a '{code}' population")
        return self


class MeasureDef(_Model):
    id: str = Field(pattern=r"^CMS\d+$")
    mips: str | None = None
    title: str = Field(max_length=80)
    url: str
    version: str
    scoring: Literal["proportion"] = "proportion"
    improvement_notation: Literal["increase", "decrease"]
    groups: tuple[MeasureGroup, ...] = Field(min_length=1)
    source: str


class RulesTable(_Model):
    version: Literal[1]
    name: str
    measurements: dict[str, Measurement] = {}
    library: dict[str, Criterion] = {}
    """Named criteria shared by measures (hospice, frailty...); a criterion refers to one with ``use``."""
    code_rules: tuple[CodeRule, ...] = ()
    measures: tuple[MeasureDef, ...] = ()
    encounter_statuses_without_codes: tuple[str, ...] = ("cancelled", "entered-in-error")
