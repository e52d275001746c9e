"""Readings: the numeric facts of the rules table (blood pressure, HbA1c...) read from a patient's
Observations, in the table's unit, de-duplicated, each with the Observation it came from."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from ..contexts import PatientContext
from ..errors import QuarantineKind
from ..sources.records import Code, EncounterRecord, ObservationRecord, QuantityValue, Src
from .loader import CompiledMeasurement, RuleSet


@dataclass(frozen=True, slots=True)
class Reading:
    measurement: str
    value: float | None
    """In the measurement's unit; None when the Observation documents the test but no value."""
    unit: str
    day: date
    instant: datetime | None
    observation: str
    encounter_ref: str | None
    via_panel: bool
    raw: str
    """The value as documented, e.g. '58 mmol/mol', for explanations."""
    end_instant: datetime | None = None
    instant_text: str = ""
    """``instant`` as ISO text ('' without one): readings of a day are ordered by it, so it is written
    once."""
    mapped: str = ""
    """How a site ConceptMap made the Observation's code count for the measurement ('' when its documented
    code did)."""
    deviation: str = ""
    """The deviation it counts through (its code, panel or unit conversion), '' when the spec's own."""

    def describe(self) -> str:
        shown = "no value" if self.value is None else f"{self.value:g} {self.unit}"
        if self.value is not None and self.raw and not self.raw.endswith(f" {self.unit}"):
            shown += f" (documented {self.raw})"
        note = f"{self.measurement} {shown} on {self.day.isoformat()}"
        if self.mapped:
            note += f"; code {self.mapped}"
        return f"{note}; counted through deviation {self.deviation}" if self.deviation else note


@dataclass(frozen=True, slots=True)
class Problem:
    """An Observation that a rule needs but cannot use; it goes to quarantine."""

    ref: str
    src: Src
    reason: str
    kind: QuarantineKind


@dataclass
class Readings:
    by_measurement: dict[str, list[Reading]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    """(observation ref, why) for Observations of a measurement that do not count (status, category)."""
    any_status: dict[str, list[Reading]] = field(default_factory=dict)
    """Readings of Observations of every status (those of the measurement's statuses too), for what the
    published logic retrieves without a status filter (``latest_day.any_status``); only kept when some
    Observation had another status, else ``by_measurement`` is the same."""
    left_out: Counter[str] = field(default_factory=Counter)
    """Observations that only a deviation which is off would read, per deviation (the run warns: by the
    spec they do not count, and the data may hold many, as Synthea's 55284-4 BP panels)."""
    _days: dict[tuple[str, bool], list[date]] = field(default_factory=dict, repr=False)

    def of(self, measurement: str) -> list[Reading]:
        return self.by_measurement.get(measurement, [])

    def between(self, measurement: str, first: date, last: date, any_status: bool = False) -> list[Reading]:
        """Readings of a measurement whose day lies in [first, last] (readings are kept sorted by day);
        ``any_status``: of Observations of every status."""
        source = self.any_status if any_status and measurement in self.any_status else self.by_measurement
        items = source.get(measurement)
        if not items:
            return []
        key = (measurement, source is self.any_status)
        days = self._days.get(key)
        if days is None:
            days = [r.day for r in items]
            self._days[key] = days
        return items[bisect_left(days, first) : bisect_right(days, last)]

    def as_of(self, day: date) -> Readings:
        """Only readings taken on or before ``day``."""
        return Readings(
            {name: [r for r in items if r.day <= day] for name, items in self.by_measurement.items()},
            self.problems,
            self.ignored,
            {name: [r for r in items if r.day <= day] for name, items in self.any_status.items()},
        )


def _convert(
    quantity: QuantityValue, compiled: CompiledMeasurement, obs: ObservationRecord
) -> tuple[float | None, str, tuple[str, QuarantineKind] | None]:
    """(value in target unit, raw text, problem and its kind)."""
    spec = compiled.spec
    unit = quantity.unit if quantity.unit else spec.missing_unit
    raw = f"{quantity.value:g} {quantity.unit}" if quantity.unit else f"{quantity.value:g}"
    if unit is None:
        return (
            None,
            raw,
            (
                f"{compiled.name} value {quantity.value:g} has no unit;"
                f" expected one of {sorted(compiled.units)}",
                QuarantineKind.MISSING_UNIT,
            ),
        )
    conversion = compiled.units.get(unit)
    if conversion is None:
        return (
            None,
            raw,
            (
                f"{compiled.name} unit '{unit}' cannot be converted to '{spec.unit}'"
                f" (known: {sorted(compiled.units)})",
                QuarantineKind.UNCONVERTIBLE_UNIT,
            ),
        )
    if quantity.comparator:
        return (
            None,
            raw,
            (
                f"{compiled.name} value has comparator '{quantity.comparator}';"
                " a distinct numeric result is needed",
                QuarantineKind.VALUE_WITH_COMPARATOR,
            ),
        )
    value = round(quantity.value * conversion.factor + conversion.offset, 6)
    if spec.plausible and not spec.plausible.min <= value <= spec.plausible.max:
        return (
            None,
            raw,
            (
                f"{compiled.name} value {value:g} {spec.unit} is outside the plausible range"
                f" {spec.plausible.min:g}-{spec.plausible.max:g}",
                QuarantineKind.IMPLAUSIBLE_VALUE,
            ),
        )
    return value, raw, None


def _standalone_note(compiled: CompiledMeasurement) -> str:
    """Why an Observation of the measurement's own code, not in a panel, does not count."""
    through = sorted(name for name, adds in compiled.spec.deviations.items() if adds.standalone)
    note = "the published logic reads it only as a component of " + ", ".join(
        f"{system.rsplit('/', 1)[-1]}#{code}" for system, code in sorted(compiled.panels)
    )
    return note + (f" (a separate Observation counts with deviation {through[0]})" if through else "")


def _status_note(obs: ObservationRecord, compiled: CompiledMeasurement) -> str | None:
    """Why this Observation's status keeps it from counting for the measurement, or None."""
    statuses = compiled.spec.statuses
    return None if obs.status in statuses else f"status '{obs.status}' is not one of {list(statuses)}"


def _counts(obs: ObservationRecord, compiled: CompiledMeasurement) -> str | None:
    """Why this Observation does not count for the measurement whatever its status, or None."""
    spec = compiled.spec
    if spec.categories:
        if obs.categories:
            if not obs.categories.intersection(spec.categories):
                return f"category {sorted(obs.categories)} is not one of {list(spec.categories)}"
        elif spec.category_required:
            return f"has no category; {list(spec.categories)} is required"
    return None


def extract_readings(
    ctx: PatientContext, ruleset: RuleSet, deviations: frozenset[str] = frozenset()
) -> Readings:
    """The patient's readings as the measurements read them with these deviations on (default: none, the
    published logic). A reading that counts only through a deviation carries its name."""
    out = Readings()
    others: list[tuple[ObservationRecord, CompiledMeasurement, bool, bool]] = []
    seen: dict[tuple[str, str, float | None], int] = {}
    compiled_all = list(ruleset.measurements_for(deviations).values())
    read = frozenset().union(*(c.codes | c.panels for c in compiled_all))  # codes any measurement reads
    via = ruleset.deviation_codes()
    for obs in ctx.observations:
        if obs.codes.isdisjoint(read):
            if via and not obs.codes.isdisjoint(via.keys()):
                for name in {via[code] for code in obs.codes if code in via} - deviations:
                    out.left_out[name] += 1
            continue
        for compiled in compiled_all:
            standalone = compiled.standalone and not obs.codes.isdisjoint(compiled.codes)
            panel = not standalone and not obs.codes.isdisjoint(compiled.panels)
            if not standalone and not panel:
                if (
                    not compiled.standalone
                    and not obs.codes.isdisjoint(compiled.codes)
                    and not obs.components
                ):
                    out.ignored.append((obs.ref, f"{compiled.name}: {_standalone_note(compiled)}"))
                    for name, adds in compiled.spec.deviations.items():
                        if adds.standalone and name not in deviations:
                            out.left_out[name] += 1
                continue
            why_not = _counts(obs, compiled)
            if why_not is not None:
                out.ignored.append((obs.ref, f"{compiled.name}: {why_not}"))
                continue
            status_note = _status_note(obs, compiled)
            if status_note is not None:
                out.ignored.append((obs.ref, f"{compiled.name}: {status_note}"))
                if obs.when is not None:
                    others.append((obs, compiled, standalone, panel))
                continue
            if obs.when is None:
                out.problems.append(
                    Problem(
                        obs.ref,
                        obs.src,
                        f"{compiled.name}: Observation has no effective[x]; cannot date it",
                        QuarantineKind.UNDATED_OBSERVATION,
                    )
                )
                continue
            instant_text = obs.when.instant.isoformat() if obs.when.instant else ""
            stamp = instant_text or obs.when.start_day.isoformat()
            items = out.by_measurement.setdefault(compiled.name, [])
            for reading in _readings_of(obs, compiled, standalone, panel, out):
                key = (compiled.name, stamp, reading.value)
                if key in seen:
                    # the same reading sent twice (a panel component and a standalone Observation): the one
                    # that counts without a deviation is kept
                    if items[seen[key]].deviation and not reading.deviation:
                        items[seen[key]] = reading
                    continue
                seen[key] = len(items)
                items.append(reading)
            if not items:
                del out.by_measurement[compiled.name]
    for readings in out.by_measurement.values():
        readings.sort(key=_reading_order)
    if others:
        _add_any_status(out, others)
    return out


def _readings_of(
    obs: ObservationRecord, compiled: CompiledMeasurement, standalone: bool, panel: bool, out: Readings
) -> list[Reading]:
    """The readings of a dated Observation for a measurement (its value, or its panel's components);
    problems go to ``out``."""
    assert obs.when is not None
    if standalone:
        quantity = obs.quantity
        if quantity is None and obs.value_int is not None:
            quantity = QuantityValue(float(obs.value_int), None)
        values: list[tuple[QuantityValue | None, bool]] = [(quantity, obs.absent)]
    else:
        values = [
            (component.quantity, component.absent)
            for component in obs.components
            if not component.codes.isdisjoint(compiled.codes)
        ]
    instant_text = obs.when.instant.isoformat() if obs.when.instant else ""
    mapped = _mapped_for(obs, compiled) if obs.mapped else ""
    if standalone:
        deviation = compiled.standalone_via or _via(obs.codes & compiled.codes, compiled.via)
    else:
        deviation = _via(obs.codes & compiled.panels, compiled.via)
    found = []
    for quantity, absent in values:
        reading = _reading(obs, compiled, quantity, absent, panel, out, instant_text, mapped, deviation)
        if reading is not None:
            found.append(reading)
    return found


def _add_any_status(
    out: Readings, others: list[tuple[ObservationRecord, CompiledMeasurement, bool, bool]]
) -> None:
    """``out.any_status``: the readings plus those of Observations of other statuses (their problems are
    not quarantined: the Observation does not count for the measurement)."""
    scratch = Readings()
    extra: dict[str, list[Reading]] = {}
    for obs, compiled, standalone, panel in others:
        for reading in _readings_of(obs, compiled, standalone, panel, scratch):
            extra.setdefault(compiled.name, []).append(reading)
    for name, items in extra.items():
        every = out.by_measurement.get(name, []) + items
        every.sort(key=_reading_order)
        out.any_status[name] = every


def _reading(
    obs: ObservationRecord,
    compiled: CompiledMeasurement,
    quantity: QuantityValue | None,
    absent: bool,
    via_panel: bool,
    out: Readings,
    instant_text: str,
    mapped: str = "",
    deviation: str = "",
) -> Reading | None:
    assert obs.when is not None
    value: float | None = None
    raw = ""
    if quantity is not None and not absent:
        value, raw, problem = _convert(quantity, compiled, obs)
        if problem is not None:
            reason, kind = problem
            if (
                quantity.comparator
            ):  # a range or threshold: documented, but no distinct result (CQL: no value)
                reason += "; counted as a result without a usable value"
                out.problems.append(Problem(obs.ref, obs.src, reason, kind))
                value = None
            else:
                out.problems.append(Problem(obs.ref, obs.src, reason, kind))
                return None
    elif not absent and not via_panel and obs.value_string is not None:
        out.problems.append(
            Problem(
                obs.ref,
                obs.src,
                f"{compiled.name} value is text, not a quantity: cannot band it;"
                " counted as a result without a usable value",
                QuarantineKind.TEXT_VALUE,
            )
        )
        raw = obs.value_string[:40]
    return Reading(
        compiled.name,
        value,
        compiled.spec.unit,
        obs.when.end_day,  # CQL effective.latest(): a reading over a period counts on its last day
        obs.when.instant,
        obs.ref,
        obs.encounter_ref,
        via_panel,
        raw,
        obs.when.end_instant or obs.when.instant,
        instant_text,
        mapped,
        deviation
        or (compiled.unit_via.get(quantity.unit or "", "") if value is not None and quantity else ""),
    )


def _unit_via(compiled: CompiledMeasurement, quantity: QuantityValue | None) -> str:
    """The deviation whose unit conversion gave the value ('' for the table's own or none)."""
    if quantity is None or not compiled.unit_via:
        return ""
    return compiled.unit_via.get(quantity.unit or compiled.spec.missing_unit or "", "")


def _via(matched: frozenset[Code], via: dict[Code, str]) -> str:
    """The deviation through which these matched codes count: '' when one of them counts by itself."""
    names = {via.get(code, "") for code in matched}
    return "" if not names or "" in names else min(names)


def _mapped_for(obs: ObservationRecord, compiled: CompiledMeasurement) -> str:
    """How a site map made ``obs`` a reading of ``compiled``: '' when a documented code already did."""
    added = {mapping.target for mapping in obs.mapped}
    documented = obs.codes - added
    if not documented.isdisjoint(compiled.codes) or not documented.isdisjoint(compiled.panels):
        return ""
    return "; ".join(
        mapping.describe()
        for mapping in obs.mapped
        if mapping.target in compiled.codes or mapping.target in compiled.panels
    )


def _reading_order(reading: Reading) -> tuple[date, str, float, str]:
    value = reading.value if reading.value is not None else float("inf")
    return (reading.day, reading.instant_text, value, reading.observation)


def encounter_readings(ctx: PatientContext, readings: Iterable[Reading]) -> dict[str, list[Reading]]:
    """Attach readings to encounters: by Observation.encounter when it names one, else by date.

    A reading with no encounter reference belongs to the encounter whose period contains its instant,
    or else to the first encounter (by start, then id) whose days include its day.
    """
    attached: dict[str, list[Reading]] = {}
    by_day: dict[date, list[EncounterRecord]] = {}
    for encounter in ctx.encounters:
        if encounter.when is None:
            continue
        day = encounter.when.start_day
        # Encounters spanning many days (admissions) are indexed on each day they cover, capped for safety.
        for offset in range(min((encounter.when.end_day - day).days, 366) + 1):
            by_day.setdefault(date.fromordinal(day.toordinal() + offset), []).append(encounter)
    for reading in readings:
        if reading.encounter_ref is not None:
            attached.setdefault(reading.encounter_ref, []).append(reading)
            continue
        candidates = by_day.get(reading.day)
        if not candidates:
            continue
        chosen = candidates[0]
        if reading.instant is not None and len(candidates) > 1:
            for encounter in candidates:
                if _contains_instant(encounter, reading.instant):
                    chosen = encounter
                    break
        attached.setdefault(chosen.ref, []).append(reading)
    return attached


def _contains_instant(encounter: EncounterRecord, instant: datetime) -> bool:
    when = encounter.when
    if when is None or when.instant is None:
        return False
    if when.end_instant is not None:
        return when.instant <= instant <= when.end_instant
    return when.instant <= instant and instant.date() <= when.end_day


def pick_latest_day(readings: list[Reading], how: str) -> Reading | None:
    """Among readings with a value: the lowest (or the last documented) one of the latest day."""
    valued = [r for r in readings if r.value is not None]
    if not valued:
        return None
    latest = max(r.day for r in valued)
    same_day = [r for r in valued if r.day == latest]
    if how in ("last", "last-of-latest-day"):
        return max(same_day, key=lambda r: (r.instant_text, r.observation))
    return min(same_day, key=lambda r: (r.value, r.instant_text, r.observation))
