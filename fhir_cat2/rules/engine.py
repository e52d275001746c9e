"""Code rules: a documented fact on an encounter earns a quality-data code. Pure: data in, findings out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from ..contexts import PatientContext
from ..findings import Evidence, MeasureResult, QualityCode
from ..sources.records import EncounterRecord
from .facts import Reading, Readings, encounter_readings, pick_latest_day
from .loader import RuleSet
from .schema import CodeRule


def encounter_in_period(encounter: EncounterRecord, start: date, end: date) -> bool:
    return encounter.when is not None and start <= encounter.when.start_day <= end


def evaluate_code_rules(
    ctx: PatientContext,
    readings: Readings,
    ruleset: RuleSet,
    *,
    program: str,
    period: tuple[date, date],
    measure_results: Mapping[str, MeasureResult],
) -> list[QualityCode]:
    """Quality codes for each encounter of the patient in the period, in encounter then rule order."""
    rules = ruleset.code_rules(program, period[0].year)
    if not rules:
        return []
    skip_statuses = set(ruleset.table.encounter_statuses_without_codes)
    per_encounter: dict[str, dict[str, list[Reading]]] = {}
    for name, items in readings.by_measurement.items():
        for encounter_ref, attached in encounter_readings(ctx, items).items():
            per_encounter.setdefault(encounter_ref, {})[name] = attached
    out: list[QualityCode] = []
    for encounter in ctx.encounters:
        if encounter.status in skip_statuses or not encounter_in_period(encounter, *period):
            continue
        assert encounter.when is not None
        attached = per_encounter.get(encounter.ref, {})
        for rule in rules:
            if rule.measure is not None and not _eligible(rule.measure, encounter, measure_results):
                continue
            if rule.scope == "period-to-date":
                assert rule.measurement is not None
                start, day = period[0], encounter.when.start_day
                to_date = [r for r in readings.of(rule.measurement) if start <= r.day <= day]
                found = _apply(rule, encounter, {rule.measurement: to_date})
            else:
                found = _apply(rule, encounter, attached)
            if found is not None:
                out.append(found)
    return out


def _eligible(measure_id: str, encounter: EncounterRecord, results: Mapping[str, MeasureResult]) -> bool:
    """A measure-gated rule reports only on the measure's qualifying encounters of a denominator patient."""
    result = results.get(measure_id)
    if result is None or not result.groups or not result.groups[0].member("denominator"):
        return False
    return encounter.ref in result.qualifying_encounters


def _apply(rule: CodeRule, encounter: EncounterRecord, attached: dict[str, list[Reading]]) -> QualityCode | None:
    assert rule.measurement is not None and encounter.when is not None
    readings = attached.get(rule.measurement, [])
    picked = pick_latest_day(readings, rule.pick)
    if rule.when_missing:
        if picked is not None:
            return None
        where = "for " + encounter.ref if rule.scope == "encounter" else "in the period up to this encounter"
        because = f"no usable {rule.measurement} reading documented {where}"
        return _code(rule, encounter, because, ())
    if picked is None or picked.value is None or rule.band is None or not rule.band.contains(picked.value):
        return None
    how = "lowest" if rule.pick == "lowest-of-latest-day" else "last"
    whose = "the encounter's" if rule.scope == "encounter" else "the period's"
    because = (
        f"{how} {rule.measurement} on {whose} latest reading day {picked.day.isoformat()}"
        f" is {picked.value:g} {picked.unit}, which is {rule.band.describe()}"
    )
    return _code(rule, encounter, because, (Evidence(picked.observation, picked.describe()),))


def _code(
    rule: CodeRule, encounter: EncounterRecord, because: str, evidence: tuple[Evidence, ...]
) -> QualityCode:
    assert encounter.when is not None
    return QualityCode(
        rule_id=rule.id,
        code=rule.code,
        system=rule.code_system,
        modifiers=rule.modifiers,
        label=rule.label,
        encounter_ref=encounter.ref,
        serviced=encounter.when.start_day,
        because=because,
        evidence=evidence,
        measure=rule.measure,
    )
