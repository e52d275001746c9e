"""The rules table as pydantic models: measurements, code rules and measure definitions.

A rules table is data (YAML). This module only says what a valid one looks like; ``loader.py`` reads it
and reports problems by file, line and field; ``fhir_cat2.criteria`` judges its criteria, for the code
rules (``engine.py``) and the measures (``fhir_cat2.measures``).
Every number from a spec (bands, windows, ages) lives in the table, next to the ``source`` it came from.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..terminology import CPT, HCPCS, normalise_system
from .components import ComponentTest
from .timing import DateExpr, Scope, parse_date_expr

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


def _check_deviation_names(value: dict[str, Any]) -> dict[str, Any]:
    from ..deviations import DEVIATIONS

    unknown = sorted(set(value) - set(DEVIATIONS))
    if unknown:
        raise ValueError(
            f"unknown deviation(s) {', '.join(unknown)} (known: {', '.join(sorted(DEVIATIONS))})"
        )
    return value


class MeasurementDeviation(_Model):
    """What a named deviation adds to a measurement (see ``fhir_cat2.deviations``): standalone codes,
    standalone Observations of its codes, panels, or unit conversions (which replace the table's conversion
    of that unit)."""

    codes: tuple[str, ...] = ()
    standalone: bool = False
    component_of: tuple[str, ...] = ()
    units: dict[str, UnitConversion] = Field(default_factory=dict)

    @field_validator("codes", "component_of")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_code_ref(text)
        return value


class CriterionDeviation(_Model):
    """What a named deviation adds to an exists criterion: codes it matches too."""

    codes: tuple[str, ...] = ()
    valuesets: tuple[str, ...] = ()

    @field_validator("codes")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_code_ref(text)
        return value


class Measurement(CodeSet):
    """A numeric clinical fact read from Observations (standalone, or as a component of a panel)."""

    label: str = Field(max_length=80)
    exclude_codes: tuple[str, ...] = ()
    """Codes of the value sets that are not this measurement (e.g. an LDL goal in the LDL value set)."""
    component_of: tuple[str, ...] = ()
    standalone: bool = True
    """Read from Observations coded with ``codes`` themselves; false: only as a component of a
    ``component_of`` panel."""
    statuses: tuple[ObservationStatus, ...] = ("final", "amended", "corrected")
    categories: tuple[str, ...] = ()
    category_required: bool = False
    unit: str
    units: dict[str, UnitConversion]
    missing_unit: str | None = None
    plausible: Plausible | None = None
    deviations: dict[str, MeasurementDeviation] = Field(default_factory=dict)
    """Per named deviation, the codes, panels or unit conversions it adds (off unless the run turns it on)."""
    source: str

    @field_validator("component_of", "exclude_codes")
    @classmethod
    def _check_panels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_code_ref(text)
        return value

    @field_validator("deviations")
    @classmethod
    def _check_deviations(cls, value: dict[str, MeasurementDeviation]) -> dict[str, MeasurementDeviation]:
        return _check_deviation_names(value)

    @model_validator(mode="after")
    def _check_units(self) -> Measurement:
        if self.unit not in self.units:
            raise ValueError(f"units must include the target unit '{self.unit}'")
        if self.missing_unit is not None and self.missing_unit not in self.units:
            raise ValueError(f"missing_unit '{self.missing_unit}' is not one of units")
        return self


Pick = Literal["lowest-of-latest-day", "last-of-latest-day"]


# ----------------------------------------------------------------------------------------------- timing


class Window(_Model):
    """A time window from two date expressions, such as [period.start-9y, period.end] (inclusive days)."""

    start: DateExpr
    end: DateExpr

    def resolve(self, scope: Scope) -> tuple[date | None, date | None]:
        return self.start.resolve(scope), self.end.resolve(scope)

    def describe(self) -> str:
        return f"{self.start.text} .. {self.end.text}"

    def exprs(self) -> tuple[DateExpr, DateExpr]:
        return self.start, self.end


def _window(value: Any) -> Any:
    if isinstance(value, str) and "." not in value and value.isidentifier():
        value = [f"{value}.start", f"{value}.end"]  # 'period', 'encounter', or a bound name
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return {"start": parse_date_expr(value[0]), "end": parse_date_expr(value[1])}
    if isinstance(value, dict):
        return value
    raise ValueError("a window is 'period', 'encounter' or [start, end] like [period.start-9y, period.end]")


class DeceasedCriterion(_Model):
    """The patient died on or before a day (Patient.deceasedDateTime). A deceasedBoolean has no date: the
    CQL's 'deceased occurs on or before' is then unknown, so it does not hold."""

    by: DateExpr

    @field_validator("by", mode="before")
    @classmethod
    def _by(cls, value: Any) -> Any:
        return parse_date_expr(value) if isinstance(value, str) else value


class AgeCriterion(_Model):
    """Whole years of age on a day (default: the last day of the measurement period); ``unit: months``:
    whole months (the CQL's AgeInMonthsAt)."""

    min: int | None = None
    max: int | None = None
    equals: int | None = None
    unit: Literal["years", "months"] = "years"
    at: DateExpr = Field(default_factory=lambda: DateExpr(**parse_date_expr("period.end")))

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        return parse_date_expr(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> AgeCriterion:
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("give equals, or min/max, not both")
        if self.equals is None and self.min is None and self.max is None:
            raise ValueError("an age criterion needs min, max or equals")
        return self


ResourceKind = Literal[
    "AllergyIntolerance",
    "Encounter",
    "Condition",
    "Procedure",
    "Immunization",
    "Observation",
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationDispense",
    "ServiceRequest",
    "DocumentReference",
    "CarePlan",
    "Consent",
    "DeviceRequest",
    "Communication",
    "AdverseEvent",
    "Task",
]


TIMING_RELATIONS = (
    "during",
    "overlaps",
    "overlaps_after",
    "starts_during",
    "ends_during",
    "starts_by",
    "ends_by",
    "starts_before",
    "ends_before",
    "starts_after",
    "ends_after",
)
TimingOf = Literal[
    "default", "issued", "supply", "authored", "recorded", "dosage", "dosages", "dosage-start", "onset"
]


_SUPPLIED = ("MedicationRequest", "MedicationDispense")
"""Resources with a supply period (``timing_of: supply``, ``cumulative_days``)."""


def _check_code_refs(value: tuple[str, ...]) -> tuple[str, ...]:
    for text in value:
        parse_code_ref(text)
    return value


class ValueTest(_Model):
    """One acceptable value of an Observation: a coded answer and/or a number in a band.

    ``for_codes`` limits the test to Observations with one of these codes (e.g. a PHQ-9 total is a number,
    the CMS screening result is a coded answer). Numbers are read from valueQuantity, valueInteger or a plain
    number in valueString; with ``units``, only from a valueQuantity in one of those units (UCUM code, else
    its unit text) and without a comparator: the CQL's ``value as Quantity >= 190 'mg/dL'``, where a
    valueInteger is no Quantity and a unit that does not convert compares as unknown.
    """

    codes: tuple[str, ...] = ()
    valuesets: tuple[str, ...] = ()
    band: Band | None = None
    units: tuple[str, ...] = ()
    for_codes: tuple[str, ...] = ()
    label: str | None = None
    source: str | None = None

    @field_validator("codes", "for_codes")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_code_refs(value)

    @model_validator(mode="after")
    def _check(self) -> ValueTest:
        if not self.codes and not self.valuesets and self.band is None:
            raise ValueError("a value test needs codes, valuesets or band")
        if self.units and self.band is None:
            raise ValueError("units apply to a band")
        return self


class Strength(_Model):
    """How much drug one unit of a medication holds: ``mg`` per tablet or capsule, or ``mg/mL`` of a
    solution."""

    value: float = Field(gt=0)
    unit: Literal["mg", "mg/mL"]


class DailyDose(_Model):
    """An order's average daily dose in mg/d, tested against ``band``: the dispensed quantity times the
    strength per unit of its medication code (``strengths``: ``system#code`` -> strength, the first of its
    codes listed there), divided by the days it supplies (refills included: see ``total_days_supplied``).
    As the CQL's averageDailyDose: unknown (the test fails) when the days supplied cannot be told, the code
    has no strength, or a ``mg/mL`` strength meets a quantity whose unit is not ``mL``; a ``mg`` strength
    takes the quantity as a count of units, whatever its unit."""

    strengths: dict[str, Strength] = Field(min_length=1)
    band: Band
    label: str | None = None

    @field_validator("strengths")
    @classmethod
    def _check_codes(cls, value: dict[str, Strength]) -> dict[str, Strength]:
        for text in value:
            parse_code_ref(text)
        return value


class CumulativeDays(_Model):
    """Cumulative medication duration (CQL CumulativeMedicationDuration ``cumulativeDuration``): the days
    covered by the matching medications' supply periods (``timing_of: supply``: medicationRequestPeriod,
    medicationDispensePeriod), each intersected with ``within``, overlaps counted once (``collapse ... per
    day``), must be in ``band``. ``rollout`` first lays overlapping periods end to end, in start order
    (``rolloutIntervals``: a refill picked up early starts when the supply before it runs out): ``none``
    (the periods as they are, CMS128's dispenses), ``together`` (all of them in one sequence, the library's
    dispenses), ``each_code_set`` (one sequence per value set and per code of the exists, then collapsed
    together: CMS136's one rollout per drug). Medications without a supply period add nothing; with no days
    covered (CQL Sum of nothing is null) the test fails."""

    within: Window
    band: Band
    rollout: Literal["none", "together", "each_code_set"] = "none"
    label: str | None = None

    @field_validator("within", mode="before")
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return _window(value)


class TimingTest(_Model):
    """One more timing relation a resource must satisfy (see ExistsCriterion)."""

    during: Window | None = None
    overlaps: Window | None = None
    overlaps_after: Window | None = None
    starts_during: Window | None = None
    ends_during: Window | None = None
    starts_by: DateExpr | None = None
    ends_by: DateExpr | None = None
    starts_before: DateExpr | None = None
    ends_before: DateExpr | None = None
    starts_after: DateExpr | None = None
    ends_after: DateExpr | None = None
    timing_of: TimingOf = "default"
    precision: Literal["day", "instant"] = "day"

    @field_validator("during", "overlaps", "overlaps_after", "starts_during", "ends_during", mode="before")
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return None if value is None else _window(value)

    @field_validator(
        "starts_by", "ends_by", "starts_before", "ends_before", "starts_after", "ends_after", mode="before"
    )
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        return parse_date_expr(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one(self) -> TimingTest:
        given = [name for name in TIMING_RELATIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one timing relation (found: {', '.join(given) or 'none'})")
        return self

    @property
    def timing(self) -> tuple[str, Window | DateExpr]:
        for name in TIMING_RELATIONS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("validated: one relation")


class ExistsCriterion(_Model):
    """True when the patient has matching resources.

    Order of tests: code (codes/valuesets); status, category, intent, negation, reason, encounter class,
    diagnosis, discharge; timing relation; ``where`` (a criterion judged with the candidate bound as
    ``as``); ``more_than_one_order`` keeps the orders that are more than one order; then ``latest_only``
    keeps the latest candidate; then the value tests, ``daily_dose`` and ``then`` judge what is left; at
    least ``min_count`` must remain (on ``min_distinct_days`` days), and their ``total_days_supplied`` must
    be in its band.

    Timing relations, at day precision unless ``precision: instant``: ``during`` (inside the window),
    ``overlaps``, ``overlaps_after`` (overlaps and ends after the window's end: CQL ``overlaps after``),
    ``starts_during``, ``ends_during`` (windows), ``starts_by`` / ``ends_by`` (on or before a date),
    ``starts_before`` / ``ends_before`` (strictly before it: CQL ``starts before end of``) and
    ``starts_after`` / ``ends_after`` (strictly after it: CQL ``ends after``). The resource's
    time is its effective/performed/occurrence time, an order's authoredOn, a Condition's prevalence (onset to
    abatement; open while active), an Encounter's period, a Communication's sent, an AdverseEvent's
    recordedDate, a Task's executionPeriod, an AllergyIntolerance's onset to lastOccurrence (AHAOverall);
    ``timing_of`` picks another: ``issued`` (Observation), ``supply`` (the days a MedicationRequest's supply
    covers), ``dosage`` (the FIRST of its dosage bounds periods once collapsed: AHAOverall's
    ``First(collapse ...)``),
    ``dosages`` (EACH dosage's bounds period: the relation holds when it holds for ANY one, CMS347's
    ``exists (dosageInstruction.timing T where T.repeat.bounds.toInterval() overlaps ...)``),
    ``dosage-start`` (its first dosage timing event, else the start of that first bounds period: a point,
    the CQL's ``NormalizeInterval(event, bounds).earliest()``, CMS645), ``onset`` (an AllergyIntolerance's
    ``onset.toInterval()`` alone), ``authored``, ``recorded`` (a Condition's recordedDate, else the start of
    its prevalence: the CQL's ``Coalesce(recordedDate, start of prevalenceInterval())``; a
    ProcedureNotDone's QI-Core recorded extension).

    ``is: NAME`` keeps only the resource bound as NAME (an enclosing exists's ``as``, or ``encounter``: the
    episode of an encounter-based measure): a test of that very resource, such as its type or reason.
    """

    resource: ResourceKind
    is_: str | None = Field(default=None, alias="is", pattern=r"^[a-z][a-z0-9_]*$")
    """Only the resource bound as this name (see above)."""
    other_than: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    """Not the resource bound as this name: the CQL's ``X.id !~ Bound.id`` (CMS137: a telehealth visit
    other than the episode's own encounter). See ``criteria/links.py``."""
    refers_to: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    """Only records whose basedOn refers to the resource bound as this name: the CQL's
    ``Bound.id in (X.basedOn B return B.reference.getId())`` (CMS50: the consultant report Task based on the
    referral). See ``criteria/links.py``."""
    part_of: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    """Observation only: ``any``: it is part of some event (partOf refers to something: the CQL's
    ``Obs.partOf R return ... is not null``, a list, null only when partOf is absent); NAME: part of the
    resource bound as NAME (partOf refers to it). See ``fhir_cat2.criteria.links``."""
    codes: tuple[str, ...] = ()
    valuesets: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    """Allowed statuses; for a Condition, its clinicalStatus."""
    exclude_statuses: tuple[str, ...] = ()
    severity_valuesets: tuple[str, ...] = ()
    """Condition only: Condition.severity is in these value sets."""
    categories: tuple[str, ...] = ()
    """At least one category code among these (Observation, Condition, Event)."""
    intents: tuple[str, ...] = ()
    not_done: bool = False
    """Match only documentation that the act was NOT done: an Observation with status cancelled, a Procedure
    or Immunization with status not-done, or a request with doNotPerform
    (QI-Core *NotDone / *NotRequested)."""
    exclude_do_not_perform: bool = True
    exclude_verification_statuses: tuple[str, ...] = ()
    """Condition only: verificationStatus codes that do not count, a missing one counting (CMS149, CMS143,
    CMS142: 'not unconfirmed, refuted or entered-in-error'); ``verification_statuses`` lists those that do."""
    body_sites: tuple[str, ...] = ()
    """Condition only: at least one bodySite coding among these (CMS125: a unilateral mastectomy on the right
    side, bodySite ~ SNOMED 24028007)."""
    reason_codes: tuple[str, ...] = ()
    reason_valuesets: tuple[str, ...] = ()
    """statusReason, reasonCode, or the QI-Core notDoneReason / doNotPerformReason extension."""
    value_codes: tuple[str, ...] = ()
    value_valuesets: tuple[str, ...] = ()
    value_tests: tuple[ValueTest, ...] = ()
    """Any one of these must hold (in addition to value_codes/value_valuesets when given)."""
    value_present: bool = False
    components: ComponentTest | None = None
    """Observation only: its component values, and a threshold table by its coded value
    (``fhir_cat2.rules.components``); judged with the value tests."""
    diagnosis_valuesets: tuple[str, ...] = ()
    """Encounter only: one of the encounter's diagnoses (Encounter.diagnosis) is in these value sets."""
    principal_diagnosis_valuesets: tuple[str, ...] = ()
    """Encounter only: its principal diagnosis (the one ranked 1 with use billing: QICoreCommon
    ``principalDiagnosis().code in``) is in these value sets."""
    discharge_codes: tuple[str, ...] = ()
    """Encounter only: hospitalization.dischargeDisposition is one of these."""
    exclude_classes: tuple[str, ...] = ()
    """Encounter only: Encounter.class codes that do not count (e.g. VR, virtual)."""
    classes: tuple[str, ...] = ()
    """Encounter only: Encounter.class must be one of these (e.g. IMP); may replace codes/valuesets."""
    timing_of: TimingOf = "default"
    precision: Literal["day", "instant"] = "day"
    during: Window | None = None
    overlaps: Window | None = None
    overlaps_after: Window | None = None
    starts_during: Window | None = None
    ends_during: Window | None = None
    starts_by: DateExpr | None = None
    ends_by: DateExpr | None = None
    starts_before: DateExpr | None = None
    ends_before: DateExpr | None = None
    starts_after: DateExpr | None = None
    ends_after: DateExpr | None = None
    also: tuple[TimingTest, ...] = ()
    """Further timing relations, each of which must hold too."""
    as_: str = Field(default="this", alias="as", pattern=r"^[a-z][a-z0-9_]*$")
    where: Criterion | None = None
    then: Criterion | None = None
    latest_only: bool = False
    """Judge only the latest candidate (by ``latest_by``) with the value tests and ``then``."""
    earliest_only: bool = False
    """Judge only the earliest candidate (by ``latest_by``): the CQL's First(...)."""
    latest_by: Literal["start", "end"] = "end"
    values_first: bool = False
    """Apply the value tests before ``latest_only``/``earliest_only`` picks one (First of the assessments
    greater than 9), instead of to the one picked (is the most recent one positive)."""
    verification_statuses: tuple[str, ...] = ()
    """Condition (or AllergyIntolerance): verificationStatus must be one of these (the CQL's
    isConfirmedActiveDiagnosis)."""
    min_count: int = Field(default=1, ge=1)
    min_distinct_days: int = Field(default=1, ge=1)
    more_than_one_order: Window | None = None
    """MedicationRequest only: keep the orders that are 'more than one order' in the window (the CQL's
    moreThanOneOrder), each judged with the orders that pass the tests before it (its pool): an order
    authored in the window allowing at least one refill (numberOfRepeatsAllowed >= 1); or authored in the
    window, with another order of the pool authored in it on another day; or authored in the window, with
    another order of the pool authored the same day, the two supply periods (``timing_of: supply``) starting
    on different days, both in the window. Applied after ``where``, before ``latest_only``."""
    daily_dose: DailyDose | None = None
    """MedicationRequest only: the order's average daily dose passes this test (with the value tests)."""
    total_days_supplied: Band | None = None
    """MedicationRequest only: the days supplied by the matching orders, summed (each the expected supply
    duration in days, else quantity / (dose x doses per day), times 1 + refills; the CQL's
    CumulativeMedicationDuration totalDaysSupplied), must be in this band; orders whose days cannot be told
    add nothing, and with none known it fails."""
    cumulative_days: CumulativeDays | None = None
    """MedicationRequest or MedicationDispense: the days the matching medications cover in a window (see
    ``CumulativeDays``)."""
    deviations: dict[str, CriterionDeviation] = Field(default_factory=dict)
    """Per named deviation, the codes it matches too (off unless the run turns it on)."""
    label: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("deviations")
    @classmethod
    def _check_deviations(cls, value: dict[str, CriterionDeviation]) -> dict[str, CriterionDeviation]:
        return _check_deviation_names(value)

    @field_validator(
        "during",
        "overlaps",
        "overlaps_after",
        "starts_during",
        "ends_during",
        "more_than_one_order",
        mode="before",
    )
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return None if value is None else _window(value)

    @field_validator(
        "starts_by", "ends_by", "starts_before", "ends_before", "starts_after", "ends_after", mode="before"
    )
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        return parse_date_expr(value) if isinstance(value, str) else value

    @field_validator("codes", "value_codes", "discharge_codes", "reason_codes", "body_sites")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_code_refs(value)

    @model_validator(mode="after")
    def _check(self) -> ExistsCriterion:
        if (
            not self.codes
            and not self.valuesets
            and not self.classes
            and self.is_ is None
            and not (self.value_codes or self.value_valuesets)
        ):
            raise ValueError(
                "give codes or valuesets (or, for an Encounter, classes; or is; or, to read every resource"
                " of the type, value_codes or value_valuesets)"
            )
        if (self.part_of is not None or self.components is not None) and self.resource != "Observation":
            raise ValueError("part_of and components apply to resource Observation only")
        given = [name for name in TIMING_RELATIONS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one timing relation (found: {', '.join(given)}); more go in also")
        encounter_only = (
            self.diagnosis_valuesets
            or self.principal_diagnosis_valuesets
            or self.discharge_codes
            or self.exclude_classes
            or self.classes
        )
        if (self.exclude_verification_statuses or self.body_sites) and self.resource != "Condition":
            raise ValueError("exclude_verification_statuses and body_sites apply to resource Condition only")
        if encounter_only and self.resource != "Encounter":
            raise ValueError(
                "diagnosis_valuesets, principal_diagnosis_valuesets, discharge_codes, classes and"
                " exclude_classes apply to resource Encounter only"
            )
        if self.severity_valuesets and self.resource != "Condition":
            raise ValueError("severity_valuesets apply to resource Condition only")
        if self.timing_of == "recorded" and self.resource not in ("Condition", "Procedure"):
            raise ValueError("timing_of recorded applies to resources Condition and Procedure only")
        for timing_of in (self.timing_of, *(test.timing_of for test in self.also)):
            if timing_of == "supply" and self.resource not in _SUPPLIED:
                raise ValueError("timing_of supply applies to MedicationRequest and MedicationDispense only")
            if timing_of in ("dosage", "dosages") and self.resource != "MedicationRequest":
                raise ValueError(f"timing_of {timing_of} applies to resource MedicationRequest only")
            if timing_of == "onset" and self.resource != "AllergyIntolerance":
                raise ValueError("timing_of onset applies to resource AllergyIntolerance only")
        if self.as_ == "period":
            raise ValueError("'as: period' would hide the period anchor; choose another name")
        if self.latest_only and self.earliest_only:
            raise ValueError("give latest_only or earliest_only, not both")
        if self.verification_statuses and self.resource not in ("Condition", "AllergyIntolerance"):
            raise ValueError("verification_statuses apply to resource Condition only (or AllergyIntolerance)")
        if "period" in (self.is_, self.other_than, self.refers_to):
            raise ValueError("'period' is not a resource; name a bound resource (is, other_than, refers_to)")
        orders = self.more_than_one_order or self.daily_dose or self.total_days_supplied
        if orders is not None and self.resource != "MedicationRequest":
            raise ValueError(
                "more_than_one_order, daily_dose and total_days_supplied apply to resource"
                " MedicationRequest only"
            )
        if self.cumulative_days is not None and self.resource not in _SUPPLIED:
            raise ValueError("cumulative_days applies to resources MedicationRequest and MedicationDispense")
        return self

    @property
    def timing(self) -> tuple[str, Window | DateExpr] | None:
        for name in TIMING_RELATIONS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None


class LatestDayCriterion(_Model):
    """Readings of measurements in a window: pick the day's values and test them.

    ``pick: lowest``: the latest day in the window with a reading of every listed measurement, and the
    lowest value of each on that day (CMS165, CMS122). ``pick: last``: the last reading in the window (by
    time), each measurement's value taken from that same Observation (CMS22 'last BP of the encounter').
    """

    measurements: tuple[str, ...] = Field(min_length=1)
    within: Window
    pick: Literal["lowest", "last"] = "lowest"
    test: dict[str, Band]
    precision: Literal["day", "instant"] = "day"
    exclude_encounter_classes: tuple[str, ...] = ()
    count_valueless: bool = False
    if_none: bool = False
    if_no_value: bool = False
    any_status: bool = False
    """Read Observations of every status, not only the measurement's statuses: for what the published
    logic retrieves without a status filter (CMS22's first hypertensive reading)."""
    label: str | None = None

    @field_validator("within", mode="before")
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return _window(value)


class ReadingsCriterion(_Model):
    """True when some reading of a measurement in the window has a value in the band
    (CMS69 'any BMI >= 25')."""

    measurement: str
    within: Window
    band: Band | None = None
    min_count: int = Field(default=1, ge=1)
    label: str | None = None

    @field_validator("within", mode="before")
    @classmethod
    def _parse_window(cls, value: Any) -> Any:
        return _window(value)


class DistinctDaysCriterion(_Model):
    """At least ``min`` different days among the records that make ``of`` hold: ``of`` is an exists, or an
    any-of of exists (through ``use`` too), whose matching records are pooled, each counted on the first
    day of its time (its ``timing_of``). The CQL's ``Count(distinct (A union B) return date from
    X.earliest())`` over several retrieves (an Immunization and a Procedure of the same vaccine), and its
    chains ``from A1, A2, A3 where A2 1 day or more after A1 and A3 1 day or more after A2``: N doses on N
    different days. An exists's own ``min_count`` / ``min_distinct_days`` count within one resource type
    only."""

    min: int = Field(ge=1)
    of: Criterion
    label: str | None = None


class ScoreAddend(_Model):
    """A score made of two items: for an assessment coded with one of ``for_codes``, the value of the one
    record ``exists`` matches (judged with the assessment bound as ``assessment``; give ``latest_only`` or
    ``earliest_only``) is added to the assessment's own value (CMS771: the AUA symptom index plus the last
    quality-of-life answer of the same day). No such record, or one without a value of the score's type,
    leaves the assessment without a score, as the CQL's sum with a null is null."""

    for_codes: tuple[str, ...] = Field(min_length=1)
    exists: ExistsCriterion

    @field_validator("for_codes")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_code_refs(value)


class ScoreChangeCriterion(_Model):
    """The change of a score between two assessments passes a band (CQL ``First.value - Last.value >= 3``).

    ``baseline`` and ``follow_up`` are exists criteria that each pick one assessment (``earliest_only`` or
    ``latest_only``); ``follow_up`` is judged with the baseline bound as the baseline's ``as``, so its
    window may follow the first assessment. An assessment's score is its value of ``value_type``
    (``integer``: a valueInteger only, the CQL's ``value as Integer``, so a valueQuantity has none;
    ``number``: any number, see ``ObservationRecord.number``), plus any ``plus`` that applies to its code.
    ``change`` says which is subtracted from which; with either score missing the criterion does not hold.
    """

    baseline: ExistsCriterion
    follow_up: ExistsCriterion
    plus: tuple[ScoreAddend, ...] = ()
    value_type: Literal["integer", "number"] = "integer"
    change: Literal["baseline-minus-follow-up", "follow-up-minus-baseline"]
    band: Band
    label: str | None = None

    @model_validator(mode="after")
    def _one_each(self) -> ScoreChangeCriterion:
        for name in ("baseline", "follow_up"):
            spec: ExistsCriterion = getattr(self, name)
            if not (spec.earliest_only or spec.latest_only):
                raise ValueError(f"{name} must pick one assessment: give earliest_only or latest_only")
        for addend in self.plus:
            if not (addend.exists.earliest_only or addend.exists.latest_only):
                raise ValueError("a plus exists must pick one record: give earliest_only or latest_only")
        if self.baseline.as_ == "assessment" or self.follow_up.as_ == "assessment":
            raise ValueError("'as: assessment' is the name plus criteria bind; choose another name")
        return self


CRITERION_KEYS = (
    "all",
    "any",
    "not_",
    "population",
    "age",
    "gender",
    "deceased",
    "exists",
    "latest_day",
    "readings",
    "use",
    "distinct_days",
    "score_change",
)


class Criterion(_Model):
    """Exactly one of the keys below."""

    all: tuple[Criterion, ...] | None = None
    any: tuple[Criterion, ...] | None = None
    not_: Criterion | None = Field(default=None, alias="not")
    population: PopulationCode | None = None
    age: AgeCriterion | None = None
    gender: tuple[str, ...] | None = None
    deceased: DeceasedCriterion | None = None
    exists: ExistsCriterion | None = None
    latest_day: LatestDayCriterion | None = None
    readings: ReadingsCriterion | None = None
    score_change: ScoreChangeCriterion | None = None
    """The change of a score between two assessments (``ScoreChangeCriterion``)."""
    use: str | None = None
    """The name of a criterion in the table's library."""
    distinct_days: DistinctDaysCriterion | None = None
    label: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> Criterion:
        keys = [name for name in CRITERION_KEYS if getattr(self, name) is not None]
        if len(keys) != 1:
            shown = ", ".join(k.rstrip("_") for k in keys) or "none"
            raise ValueError(
                "a criterion has exactly one of all, any, not, population, age, gender, deceased, exists,"
                " latest_day,"
                f" readings, score_change, use, distinct_days (found: {shown})"
            )
        return self


# ----------------------------------------------------------------------------------------------- code rules

_QDC_RE = re.compile(r"^(\d{4}F|[A-Z]\d{4})((?:-[0-9A-Z]{2})*)$")


def parse_qdc(text: str) -> tuple[str, tuple[str, ...]]:
    """'1123F-8P' -> ('1123F', ('8P',))."""
    match = _QDC_RE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a quality-data code like G8752, 3017F or 1123F-8P")
    modifiers = tuple(m for m in match.group(2).split("-") if m)
    return match.group(1), modifiers


def code_system_of(code: str) -> str:
    return CPT if code.endswith("F") else HCPCS


class CodeRule(_Model):
    """One quality-data code and the documented fact on an encounter that earns it.

    The trigger is either a ``measurement`` with a ``band`` (or ``when_missing``), or a criterion ``when``
    judged for the encounter (anchors ``encounter.start`` / ``encounter.end`` name its period).
    """

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
    when: Criterion | None = None
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
        if self.when is not None:
            if self.measurement is not None or self.band is not None or self.when_missing:
                raise ValueError(
                    "give either when (a criterion) or measurement with band/when_missing, not both"
                )
            return self
        if self.measurement is None:
            raise ValueError(
                "a code rule needs a trigger: when (a criterion), or measurement with band or when_missing"
            )
        if self.band is None and not self.when_missing:
            raise ValueError("give band (value range) or when_missing: true")
        if self.band is not None and self.when_missing:
            raise ValueError("give band or when_missing, not both")
        return self

    @property
    def code_system(self) -> str:
        if self.system:
            return normalise_system(self.system)
        return code_system_of(self.code)


# ----------------------------------------------------------------------------------------------- measures


class ClaimsOption(_Model):
    """Quality-data codes reported together on one claim, and when this option applies."""

    codes: tuple[str, ...] = Field(min_length=1)
    label: str = Field(max_length=80)
    when: Criterion | None = None
    """Judged for the encounter; None: the option applies whenever its category does."""
    listed_exclusion: bool = False
    """An exclusion chosen when the claim line carries a diagnosis (or procedure) the year's claims file
    lists as putting the line in the denominator exclusion (DX_CODE_PD_Exl), whatever the record says else."""
    cite: str | None = None
    """Where the reason's wording comes from: the measure's published claims specification for the years."""

    @field_validator("codes", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("codes")
    @classmethod
    def _check(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_qdc(text)
        return value

    def parsed(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(parse_qdc(text) for text in self.codes)


CLAIMS_CATEGORIES = ("met", "not_met", "exclusion", "exception")


class ClaimsYears(_Model):
    """For some years: which codes CMS's claims single-source file lists for each outcome of the measure."""

    years: Years
    eligible: Criterion | None = None
    """Judged for the encounter, on top of the year's claims denominator rows (data/claims/<year>.json),
    only where the specification needs more than the rows say."""
    met: tuple[ClaimsOption, ...] = ()
    not_met: tuple[ClaimsOption, ...] = ()
    exclusion: tuple[ClaimsOption, ...] = ()
    exception: tuple[ClaimsOption, ...] = ()
    source: str

    @field_validator("years", mode="before")
    @classmethod
    def _parse_years(cls, value: Any) -> tuple[int, ...]:
        return _years(value)

    @model_validator(mode="after")
    def _listed_exclusion_is_an_exclusion(self) -> ClaimsYears:
        for category in ("met", "not_met", "exception"):
            if any(option.listed_exclusion for option in self.options(category)):
                raise ValueError(f"listed_exclusion is for exclusion options, not {category}")
        return self

    def options(self, category: str) -> tuple[ClaimsOption, ...]:
        result: tuple[ClaimsOption, ...] = getattr(self, category)
        return result


class Population(_Model):
    id: str
    criteria: Criterion


class Stratifier(_Model):
    """A stratum of the group's initial population (the Measure's group.stratifier, e.g. ages 46-49):
    MeasureReports count each population within it too."""

    id: str
    """The stratifier id of the published Measure."""
    label: str = Field(max_length=80)
    criteria: Criterion


class GapWording(_Model):
    """How a care gap of a group reads to a care coordinator (our own words, from the measure's logic).

    ``need``: what the measure asks for ("a blood pressure reading below 140/90"); ``missing``: the finding
    when the criteria that decided the gap used no evidence ("no HbA1c result in {year}"); ``found``: the
    finding with the evidence they used ("last BP {evidence} is 140/90 or above"; {evidence} is the latest
    reading's values and date, or the date of the latest record); ``close``: what closes an open gap, when
    not simply the need by the end of the period ("{need} by {by} closes it"). Placeholders: {year} (of the
    period), {by} (its last day), {evidence}.
    """

    need: str = Field(min_length=1, max_length=120)
    missing: str = Field(min_length=1, max_length=160)
    found: str | None = Field(default=None, max_length=160)
    close: str | None = Field(default=None, max_length=160)

    @model_validator(mode="after")
    def _placeholders(self) -> GapWording:
        for text in (self.need, self.missing, self.found, self.close):
            if text is None:
                continue
            try:
                text.format(year="", by="", evidence="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"gap wording '{text}': only {{year}}, {{by}} and {{evidence}}") from exc
        return self


class MeasureGroup(_Model):
    id: str
    populations: dict[PopulationCode, Population]
    stratifiers: tuple[Stratifier, ...] = ()
    gap: GapWording | None = None
    """How an open or closed care gap of this group reads (``--emit gaps``, explain)."""
    mips_rate: str | None = Field(default=None, pattern=r"^\d{3}(\.\d{2})?$")
    """The CMS claims (sub-)measure this group reports, e.g. 226.01 (default: the measure's mips id)."""
    claims: tuple[ClaimsYears, ...] = ()

    @model_validator(mode="after")
    def _required(self) -> MeasureGroup:
        for code in ("initial-population", "denominator", "numerator"):
            if code not in self.populations:
                raise ValueError(f"group needs a '{code}' population")
        return self

    def claims_for(self, year: int) -> ClaimsYears | None:
        for entry in self.claims:
            if year in entry.years:
                return entry
        return None


class MeasureDef(_Model):
    id: str = Field(pattern=r"^(CMS\d+|MIPS\d{3})$")
    """The CMS eCQM number (CMS165), or MIPS<nnn> for a claims measure without an eCQM."""
    mips: str | None = Field(default=None, pattern=r"^\d{3}$")
    title: str = Field(max_length=80)
    what: str | None = Field(default=None, max_length=120)
    """What the measure counts, in a few words (the catalogue's 'What': ``fhir-cat2 measures list``)."""
    logic: str | None = None
    """Its key logic in a paragraph: ages, windows, what counts, exclusions (the catalogue's 'Key logic')."""
    url: str | None = None
    """Canonical URL of the published Measure resource; None: no MeasureReport is written (claims only)."""
    version: str | None = None
    scoring: Literal["proportion"] = "proportion"
    basis: Literal["patient", "encounter", "procedure"] = "patient"
    episode: ExistsCriterion | None = None
    """Episode-based measures: the encounters (basis encounter) or procedures (basis procedure) that are
    episodes; populations are judged per episode with the anchor named as the basis (``encounter``,
    ``procedure``) bound to it."""
    improvement_notation: Literal["increase", "decrease"]
    groups: tuple[MeasureGroup, ...] = Field(min_length=1)
    source: str

    @model_validator(mode="after")
    def _check(self) -> MeasureDef:
        if (self.basis != "patient") != (self.episode is not None):
            raise ValueError("an episode-based measure needs episode (and only it)")
        if self.episode is not None and self.episode.resource != self.basis.capitalize():
            raise ValueError(
                f"episode must be an exists on resource {self.basis.capitalize()} (basis {self.basis})"
            )
        if self.url is not None and self.version is None:
            raise ValueError("a measure with url needs its version")
        return self

    @property
    def episode_anchor(self) -> str | None:
        """The date anchor bound to each episode (``encounter``, ``procedure``); None for patient basis."""
        return None if self.basis == "patient" else self.basis


class RulesTable(_Model):
    version: Literal[1]
    name: str
    include: tuple[str, ...] = ()
    """Further files (globs relative to this file's folder) whose ``library``, ``code_rules`` and
    ``measures`` join this table's: one file per measure. In any file, ``exists: {like: NAME, ...}`` starts
    from the exists of library criterion NAME (a merge key that works across files)."""
    measurements: dict[str, Measurement] = {}
    library: dict[str, Criterion] = {}
    """Named criteria shared by measures (hospice, frailty...); a criterion refers to one with ``use``."""
    code_rules: tuple[CodeRule, ...] = ()
    measures: tuple[MeasureDef, ...] = ()
    encounter_statuses_without_codes: tuple[str, ...] = ("cancelled", "entered-in-error")


TimingTest.model_rebuild()
ExistsCriterion.model_rebuild()
DistinctDaysCriterion.model_rebuild()
ScoreAddend.model_rebuild()
ScoreChangeCriterion.model_rebuild()
Criterion.model_rebuild()
