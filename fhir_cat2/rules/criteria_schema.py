"""The criteria language of the rules table: what a criterion may say (``Criterion`` and the models of its
keys).

``fhir_cat2.criteria`` compiles these into plans, judges them and words why; docs/rules.md describes every key
in CQL terms. Measures (``measure_schema``) and code rules (``schema``) are built from criteria.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .base import Band, CodeRefs, TableModel, check_code_refs, check_deviation_names
from .components import ComponentTest
from .timing import DateExpr, Scope, parse_date_expr

PopulationCode = Literal[
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "denominator-exception",
    "numerator",
    "numerator-exclusion",
]


class CriterionDeviation(CodeRefs):
    """What a named deviation adds to an exists criterion: codes it matches too."""


# ----------------------------------------------------------------------------------------------- timing


class Window(TableModel):
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


def _date_expr(value: Any) -> Any:
    return parse_date_expr(value) if isinstance(value, str) else value


WindowKey = Annotated[Window, BeforeValidator(_window)]
"""A window as the table writes it: 'period', 'encounter', a bound name, or [start, end]."""
DateKey = Annotated[DateExpr, BeforeValidator(_date_expr)]
"""A date expression as the table writes it: 'period.end-9y', 'encounter.start'."""


class DeceasedCriterion(TableModel):
    """The patient died on or before a day (Patient.deceasedDateTime). A deceasedBoolean has no date: the
    CQL's 'deceased occurs on or before' is then unknown, so it does not hold."""

    by: DateKey


class AgeCriterion(TableModel):
    """Whole years of age on a day (default: the last day of the measurement period); ``unit: months``:
    whole months (the CQL's AgeInMonthsAt)."""

    min: int | None = None
    max: int | None = None
    equals: int | None = None
    unit: Literal["years", "months"] = "years"
    at: DateKey = Field(default_factory=lambda: DateExpr(**parse_date_expr("period.end")))

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


def _relations_given(model: TableModel) -> list[tuple[str, Window | DateExpr]]:
    """The timing relations a model (an exists, a timing test) gives, in ``TIMING_RELATIONS`` order."""
    return [(name, value) for name in TIMING_RELATIONS if (value := getattr(model, name)) is not None]


TimingOf = Literal[
    "default", "issued", "supply", "authored", "recorded", "dosage", "dosages", "dosage-start", "onset"
]


_SUPPLIED = ("MedicationRequest", "MedicationDispense")
"""Resources with a supply period (``timing_of: supply``, ``cumulative_days``)."""


class ValueTest(TableModel):
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
        return check_code_refs(value)

    @model_validator(mode="after")
    def _check(self) -> ValueTest:
        if not self.codes and not self.valuesets and self.band is None:
            raise ValueError("a value test needs codes, valuesets or band")
        if self.units and self.band is None:
            raise ValueError("units apply to a band")
        return self


class Strength(TableModel):
    """How much drug one unit of a medication holds: ``mg`` per tablet or capsule, or ``mg/mL`` of a
    solution."""

    value: float = Field(gt=0)
    unit: Literal["mg", "mg/mL"]


class DailyDose(TableModel):
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
        check_code_refs(tuple(value))
        return value


class CumulativeDays(TableModel):
    """Cumulative medication duration (CQL CumulativeMedicationDuration ``cumulativeDuration``): the days
    covered by the matching medications' supply periods (``timing_of: supply``: medicationRequestPeriod,
    medicationDispensePeriod), each intersected with ``within``, overlaps counted once (``collapse ... per
    day``), must be in ``band``. ``rollout`` first lays overlapping periods end to end, in start order
    (``rolloutIntervals``: a refill picked up early starts when the supply before it runs out): ``none``
    (the periods as they are, CMS128's dispenses), ``together`` (all of them in one sequence, the library's
    dispenses), ``each_code_set`` (one sequence per value set and per code of the exists, then collapsed
    together: CMS136's one rollout per drug). Medications without a supply period add nothing; with no days
    covered (CQL Sum of nothing is null) the test fails."""

    within: WindowKey
    band: Band
    rollout: Literal["none", "together", "each_code_set"] = "none"
    label: str | None = None


class TimingRelations(TableModel):
    """The timing relations a resource's time may be tested by, and which of its times (``timing_of``) at
    which precision: an exists gives any of them, a TimingTest of its ``also`` exactly one."""

    during: WindowKey | None = None
    overlaps: WindowKey | None = None
    overlaps_after: WindowKey | None = None
    starts_during: WindowKey | None = None
    ends_during: WindowKey | None = None
    starts_by: DateKey | None = None
    ends_by: DateKey | None = None
    starts_before: DateKey | None = None
    ends_before: DateKey | None = None
    starts_after: DateKey | None = None
    ends_after: DateKey | None = None
    timing_of: TimingOf = "default"
    precision: Literal["day", "instant"] = "day"


class TimingTest(TimingRelations):
    """One more timing relation a resource must satisfy (see ExistsCriterion)."""

    @model_validator(mode="after")
    def _one(self) -> TimingTest:
        given = [name for name, _ in _relations_given(self)]
        if len(given) != 1:
            raise ValueError(f"give exactly one timing relation (found: {', '.join(given) or 'none'})")
        return self

    @property
    def timing(self) -> tuple[str, Window | DateExpr]:
        [relation] = _relations_given(self)  # validated: exactly one
        return relation


class ExistsCriterion(TimingRelations):
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
    more_than_one_order: WindowKey | None = None
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
        return check_deviation_names(value)

    @field_validator("codes", "value_codes", "discharge_codes", "reason_codes", "body_sites")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_code_refs(value)

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
        given = [name for name, _ in _relations_given(self)]
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
        given = _relations_given(self)
        return given[0] if given else None


class LatestDayCriterion(TableModel):
    """Readings of measurements in a window: pick the day's values and test them.

    ``pick: lowest``: the latest day in the window with a reading of every listed measurement, and the
    lowest value of each on that day (CMS165, CMS122). ``pick: last``: the last reading in the window (by
    time), each measurement's value taken from that same Observation (CMS22 'last BP of the encounter').
    """

    measurements: tuple[str, ...] = Field(min_length=1)
    within: WindowKey
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


class ReadingsCriterion(TableModel):
    """True when some reading of a measurement in the window has a value in the band
    (CMS69 'any BMI >= 25')."""

    measurement: str
    within: WindowKey
    band: Band | None = None
    min_count: int = Field(default=1, ge=1)
    label: str | None = None


class DistinctDaysCriterion(TableModel):
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


SCORED_ASSESSMENT = "assessment"
"""The name a ``ScoreAddend``'s exists sees the scored assessment under (``assessment.start``)."""


class ScoreAddend(TableModel):
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
        return check_code_refs(value)


class ScoreChangeCriterion(TableModel):
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
        if SCORED_ASSESSMENT in (self.baseline.as_, self.follow_up.as_):
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


class Criterion(TableModel):
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


TimingTest.model_rebuild()
ExistsCriterion.model_rebuild()
DistinctDaysCriterion.model_rebuild()
ScoreAddend.model_rebuild()
ScoreChangeCriterion.model_rebuild()
Criterion.model_rebuild()
