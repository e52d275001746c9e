"""Measure definitions of the rules table evaluated for one patient and one measurement period.

Pure: a patient context and readings in, population memberships with their explanation trail out.
Proportion semantics: denominator within initial population; exclusions within denominator; numerator
counts only when not excluded; exceptions only for denominator patients neither excluded nor in numerator.
"""

from __future__ import annotations

from datetime import date

from ..contexts import PatientContext
from ..findings import Evidence, GroupResult, MeasureResult, PopulationResult, Trail
from ..rules.facts import Reading, Readings, pick_latest_day
from ..rules.loader import RuleSet
from ..rules.schema import (
    POPULATION_ORDER,
    DateExpr,
    AgeCriterion,
    Criterion,
    ExistsCriterion,
    LatestDayCriterion,
    MeasureDef,
    Window,
)
from ..sources.records import (
    ConditionRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    ResourceRecord,
    When,
)

MAX_EVIDENCE = 25
_CONDITION_NOT_VALID = frozenset({"refuted", "entered-in-error"})


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


class MeasureEvaluator:
    def __init__(self, ruleset: RuleSet, period_start: date, period_end: date) -> None:
        self.ruleset = ruleset
        self.period_start = period_start
        self.period_end = period_end

    # ------------------------------------------------------------------------------------------ measure

    def evaluate(self, measure: MeasureDef, ctx: PatientContext, readings: Readings) -> MeasureResult:
        groups: list[GroupResult] = []
        qualifying: set[str] = set()
        evaluated: set[str] = set()
        for group in measure.groups:
            members: dict[str, bool] = {}
            results: list[PopulationResult] = []
            for code in POPULATION_ORDER:
                population = group.populations.get(code)  # type: ignore[call-overload]
                if population is None:
                    continue
                gate, note = self._gate(code, members)
                if gate is None:
                    results.append(PopulationResult(code, population.id, False, None, note))
                    members[code] = False
                    continue
                trail = self._criterion(population.criteria, ctx, readings, members)
                member = trail.met and gate
                members[code] = member
                results.append(PopulationResult(code, population.id, member, trail, note if trail.met else ""))
                if code == "initial-population" and trail.met:
                    qualifying.update(e.ref for e in trail.all_evidence() if e.ref.startswith("Encounter/"))
                if members.get("initial-population"):
                    evaluated.update(e.ref for e in trail.all_evidence() if "/" in e.ref)
            groups.append(GroupResult(group.id, results))
        return MeasureResult(
            measure.id, ctx.patient_id, groups, tuple(sorted(evaluated)), frozenset(qualifying)
        )

    @staticmethod
    def _gate(code: str, members: dict[str, bool]) -> tuple[bool | None, str]:
        """(None: do not evaluate | membership allowed, note)."""
        if code == "initial-population":
            return True, ""
        if code == "denominator":
            return (True, "") if members.get("initial-population") else (None, "not in the initial population")
        if not members.get("denominator"):
            return None, "not in the denominator"
        if code == "denominator-exclusion":
            return True, ""
        if code == "numerator":
            if members.get("denominator-exclusion"):
                return False, "criteria met, but the patient is excluded from the denominator"
            return True, ""
        if code == "numerator-exclusion":
            return (True, "") if members.get("numerator") else (None, "not in the numerator")
        if code == "denominator-exception":
            if members.get("denominator-exclusion") or members.get("numerator"):
                return None, "excluded or already in the numerator"
            return True, ""
        return True, ""

    # ------------------------------------------------------------------------------------------ criteria

    def _criterion(
        self, criterion: Criterion, ctx: PatientContext, readings: Readings, members: dict[str, bool]
    ) -> Trail:
        if criterion.all is not None:
            children = [self._criterion(c, ctx, readings, members) for c in criterion.all]
            met = all(c.met for c in children)
            failed = [c.label for c in children if not c.met]
            because = "all hold" if met else "not met: " + "; ".join(failed)
            return Trail(criterion.label or "all of", met, because, (), children)
        if criterion.any is not None:
            children = [self._criterion(c, ctx, readings, members) for c in criterion.any]
            met = any(c.met for c in children)
            held = [c.label for c in children if c.met]
            because = "holds: " + "; ".join(held) if met else "none holds"
            return Trail(criterion.label or "any of", met, because, (), children)
        if criterion.not_ is not None:
            child = self._criterion(criterion.not_, ctx, readings, members)
            return Trail(
                criterion.label or f"not: {child.label}", not child.met, f"'{child.label}' is {child.met}", (), [child]
            )
        if criterion.population is not None:
            member = members.get(criterion.population, False)
            return Trail(
                criterion.label or f"in {criterion.population}",
                member,
                f"{'in' if member else 'not in'} {criterion.population}",
            )
        if criterion.age is not None:
            return self._age(criterion.age, criterion.label, ctx)
        if criterion.gender is not None:
            gender = ctx.patient.gender if ctx.patient else None
            met = gender in criterion.gender
            return Trail(
                criterion.label or f"gender in {list(criterion.gender)}",
                met,
                f"gender is {gender or 'not documented'}",
                (Evidence(f"Patient/{ctx.patient_id}", f"gender {gender}"),) if ctx.patient else (),
            )
        if criterion.exists is not None:
            return self._exists(criterion.exists, criterion.label, ctx)
        if criterion.use is not None:
            shared = self.ruleset.table.library[criterion.use]
            trail = self._criterion(shared, ctx, readings, members)
            trail.label = criterion.label or shared.label or criterion.use
            return trail
        assert criterion.latest_day is not None
        return self._latest_day(criterion.latest_day, criterion.label, ctx, readings)

    def _age(self, spec: AgeCriterion, label: str | None, ctx: PatientContext) -> Trail:
        at = spec.at.resolve(self.period_start, self.period_end)
        if spec.max is None:
            bounds = f"{spec.min or 0} or older"
        elif spec.min is None:
            bounds = f"{spec.max} or younger"
        else:
            bounds = f"{spec.min}-{spec.max}"
        title = label or f"age {bounds} at {spec.at.text}"
        if ctx.patient is None or ctx.patient.birth_date is None:
            why = "no Patient resource in the input" if ctx.patient is None else "Patient has no birthDate"
            return Trail(title, False, f"age unknown: {why}")
        age = age_on(ctx.patient.birth_date, at)
        met = (spec.min is None or age >= spec.min) and (spec.max is None or age <= spec.max)
        return Trail(
            title,
            met,
            f"age {age} on {at.isoformat()}",
            (Evidence(f"Patient/{ctx.patient_id}", f"age {age} on {at.isoformat()}"),),
        )

    def _window(self, window: Window) -> tuple[date, date]:
        return window.resolve(self.period_start, self.period_end)

    def _exists(self, spec: ExistsCriterion, label: str | None, ctx: PatientContext) -> Trail:
        resolve = self.ruleset.resolve_codes
        codes = resolve(spec.codes, spec.valuesets)
        value_codes = resolve(spec.value_codes, spec.value_valuesets) if spec.value_codes or spec.value_valuesets else None
        diagnosis_codes = resolve((), spec.diagnosis_valuesets) if spec.diagnosis_valuesets else None
        discharge_codes = resolve(spec.discharge_codes, ()) if spec.discharge_codes else None
        timing = spec.timing
        title = label or spec.label or f"{spec.resource} in {list(spec.valuesets) or list(spec.codes)}"
        candidates: list[ResourceRecord] = []
        near_misses = 0
        for record in ctx.resources(spec.resource):
            if _codes_of(record).isdisjoint(codes):
                continue
            if (
                not _status_ok(record, spec)
                or (spec.categories and _categories_of(record).isdisjoint(spec.categories))
                or (spec.exclude_do_not_perform and isinstance(record, EventRecord) and record.do_not_perform)
                or (discharge_codes is not None and _discharge_of(record).isdisjoint(discharge_codes))
                or (diagnosis_codes is not None and not _has_diagnosis(record, ctx, diagnosis_codes))
                or (timing is not None and not self._timing_ok(timing, _timing_of(record)))
            ):
                near_misses += 1
                continue
            candidates.append(record)
        if spec.latest_only and candidates:
            candidates = [max(candidates, key=_latest_key)]
        matched = [
            r
            for r in candidates
            if value_codes is None or (isinstance(r, ObservationRecord) and not r.value_codes.isdisjoint(value_codes))
        ]
        near_misses += len(candidates) - len(matched)
        where = f" {self._describe_timing(timing)}" if timing is not None else ""
        days = {(_timing_of(r) or (None, None))[1] for r in matched}
        if matched and len(days) >= spec.min_distinct_days:
            evidence = tuple(Evidence(r.ref, _describe(r)) for r in matched[:MAX_EVIDENCE])
            return Trail(title, True, f"{len(matched)} matching {spec.resource}{where}", evidence)
        if matched:
            because = (
                f"{len(matched)} matching {spec.resource}{where} on {len(days)} day(s);"
                f" {spec.min_distinct_days} different days needed"
            )
            return Trail(title, False, because, tuple(Evidence(r.ref, _describe(r)) for r in matched[:MAX_EVIDENCE]))
        because = f"no matching {spec.resource}{where}"
        if near_misses:
            because += f" ({near_misses} with a matching code failed another test: status, category, diagnosis, value or timing)"
        return Trail(title, False, because)

    def _timing_ok(self, timing: tuple[str, Window | DateExpr], span: tuple[date | None, date | None] | None) -> bool:
        if span is None:
            return False
        start, end = span
        relation, value = timing
        if isinstance(value, DateExpr):
            limit = value.resolve(self.period_start, self.period_end)
            if relation == "starts_by":
                return start is not None and start <= limit
            return end is not None and end <= limit  # ends_by
        low, high = self._window(value)
        if relation == "during":
            return start is not None and end is not None and low <= start and end <= high
        if relation == "overlaps":
            return (start is None or start <= high) and (end is None or end >= low)
        if relation == "starts_during":
            return start is not None and low <= start <= high
        return end is not None and low <= end <= high  # ends_during

    def _describe_timing(self, timing: tuple[str, Window | DateExpr]) -> str:
        relation, value = timing
        words = relation.replace("_", " ")
        if isinstance(value, DateExpr):
            return f"{words.replace(' by', ' on or before')} {value.resolve(self.period_start, self.period_end).isoformat()}"
        low, high = self._window(value)
        return f"{words} {low.isoformat()}..{high.isoformat()}"

    def _latest_day(
        self, spec: LatestDayCriterion, label: str | None, ctx: PatientContext, readings: Readings
    ) -> Trail:
        start, end = self._window(spec.within)
        title = label or spec.label or f"latest day with {' and '.join(spec.measurements)}"
        excluded_classes = set(spec.exclude_encounter_classes)
        skipped: list[Evidence] = []
        usable: dict[str, list[Reading]] = {}
        for name in spec.measurements:
            for reading in readings.of(name):
                if not start <= reading.day <= end:
                    continue
                if reading.value is None and not spec.count_valueless:
                    continue
                if excluded_classes and reading.encounter_ref:
                    encounter = ctx.encounter_by_ref.get(reading.encounter_ref)
                    if encounter is not None and encounter.class_code in excluded_classes:
                        skipped.append(
                            Evidence(reading.observation, f"not counted: taken in a {encounter.class_code} encounter")
                        )
                        continue
                usable.setdefault(name, []).append(reading)
        days: set[date] | None = None
        for name in spec.measurements:
            found = {r.day for r in usable.get(name, [])}
            days = found if days is None else days & found
        if not days:
            return Trail(
                title,
                spec.if_none,
                f"no day in {start.isoformat()}..{end.isoformat()} has "
                + " and ".join(spec.measurements)
                + (f"; counted as {'met' if spec.if_none else 'not met'}" if spec.if_none else ""),
                tuple(skipped),
            )
        latest = max(days)
        evidence: list[Evidence] = []
        results: list[str] = []
        met = True
        for name in spec.measurements:
            same_day = [r for r in usable[name] if r.day == latest]
            picked = pick_latest_day(same_day, spec.pick)
            band = spec.test.get(name)
            if picked is None:  # only valueless readings that day
                valueless = same_day[0]
                evidence.append(Evidence(valueless.observation, valueless.describe()))
                results.append(f"{name} has no value")
                met = met and spec.if_no_value
                continue
            evidence.append(Evidence(picked.observation, picked.describe()))
            if band is None:
                continue
            ok = picked.value is not None and band.contains(picked.value)
            results.append(f"{spec.pick} {name} {picked.value:g} {picked.unit} {'is' if ok else 'is not'} {band.describe()}")
            met = met and ok
        because = f"latest day {latest.isoformat()}: " + "; ".join(results)
        return Trail(title, met, because, tuple(evidence + skipped))


def _codes_of(record: ResourceRecord) -> frozenset[tuple[str, str]]:
    if isinstance(record, EncounterRecord):
        return record.type_codes
    return getattr(record, "codes", frozenset())


def _categories_of(record: ResourceRecord) -> frozenset[str]:
    return getattr(record, "categories", frozenset())


def _status_ok(record: ResourceRecord, spec: ExistsCriterion) -> bool:
    if isinstance(record, ConditionRecord):
        if record.verification_status in _CONDITION_NOT_VALID:
            return False
        status = record.clinical_status
    else:
        status = getattr(record, "status", None)
    if spec.statuses and status not in spec.statuses:
        return False
    return not (spec.exclude_statuses and status in spec.exclude_statuses)


def _timing_of(record: ResourceRecord) -> tuple[date | None, date | None] | None:
    """(first day, last day) of when the resource applies; None for an open end (or unknown start).

    Conditions use their prevalence period (onset to abatement, open while not abated), as QICoreCommon does.
    """
    if isinstance(record, ConditionRecord):
        begin: When | None = record.onset
        return (begin.start_day if begin else None, record.abatement.end_day if record.abatement else None)
    when = getattr(record, "when", None)
    if when is None:
        return None
    return when.start_day, when.end_day


def _latest_key(record: ResourceRecord) -> tuple[str, str]:
    span = _timing_of(record)
    end = span[1] if span else None
    return (end.isoformat() if end else "", record.ref)


def _discharge_of(record: ResourceRecord) -> frozenset[tuple[str, str]]:
    return record.discharge_codes if isinstance(record, EncounterRecord) else frozenset()


def _has_diagnosis(record: ResourceRecord, ctx: PatientContext, codes: frozenset[tuple[str, str]]) -> bool:
    if not isinstance(record, EncounterRecord):
        return False
    for ref in record.diagnoses:
        condition = ctx.condition_by_ref.get(ref)
        if condition is not None and not condition.codes.isdisjoint(codes):
            return True
    return False


def _describe(record: ResourceRecord) -> str:
    timing = _timing_of(record)
    when = ""
    if timing is not None:
        start, end = timing
        when = start.isoformat() if start else "(start unknown)"
        if end is None:
            when += "..(open)"
        elif end != start:
            when += f"..{end.isoformat()}"
    codes = sorted(_codes_of(record))
    code = codes[0][1] if codes else "?"
    status = getattr(record, "status", None) or getattr(record, "clinical_status", None) or ""
    parts = [f"code {code}"]
    if status:
        parts.append(f"status {status}")
    if when:
        parts.append(when)
    if isinstance(record, ObservationRecord) and record.value_codes:
        parts.append("value " + ",".join(sorted(c for _, c in record.value_codes)))
    if isinstance(record, EventRecord) and record.reason_codes:
        parts.append("reason " + ",".join(sorted(c for _, c in record.reason_codes)))
    return ", ".join(parts)
