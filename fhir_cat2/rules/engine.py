"""Code rules: a documented clinical fact on an encounter earns a quality-data code. Pure: data in, findings
out.

Two kinds of rule: a ``measurement`` banded (the encounter's readings, or the period's up to the encounter),
or a criterion ``when`` judged for the encounter (its anchors ``encounter.start``/``encounter.end``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from ..contexts import PatientContext
from ..criteria.judge import Criteria
from ..criteria.spans import span
from ..findings import Evidence, MeasureResult, QualityCode, Trail
from ..sources.records import EncounterRecord
from .facts import Reading, Readings, encounter_readings, pick_latest_day
from .loader import RuleSet
from .schema import CodeRule
from .timing import Scope, Span

MAX_CODE_EVIDENCE = 10


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
    criteria: Criteria | None = None,
) -> list[QualityCode]:
    """Quality codes for each encounter of the patient in the period, in encounter then rule order.

    ``criteria``: the run's, whose memo the measures filled (else made here when a rule has a criterion)."""
    rules = ruleset.code_rules(program, period[0].year)
    if not rules:
        return []
    if criteria is None and any(rule.when is not None for rule in rules):
        criteria = Criteria(ruleset)
    skip_statuses = set(ruleset.table.encounter_statuses_without_codes)
    per_encounter: dict[str, dict[str, list[Reading]]] = {}
    every = [reading for items in readings.by_measurement.values() for reading in items]
    for encounter_ref, at_encounter in encounter_readings(ctx, every).items():
        for reading in at_encounter:  # in each measurement's order
            per_encounter.setdefault(encounter_ref, {}).setdefault(reading.measurement, []).append(reading)
    out: list[QualityCode] = []
    facts = criteria.facts(ctx, readings) if criteria is not None else None
    # A criterion rule whose required resources the patient has none of cannot fire on any encounter.
    if criteria is not None and facts is not None:
        rules = [rule for rule in rules if rule.when is None or criteria.possible(rule.when, facts)]
    for encounter in ctx.encounters:
        if encounter.status in skip_statuses or not encounter_in_period(encounter, *period):
            continue
        assert encounter.when is not None
        attached = per_encounter.get(encounter.ref, {})
        scope = Scope(
            period[0],
            period[1],
            {"encounter": span(encounter) or Span(None, None, ref=encounter.ref)},
            birth=ctx.patient.birth_date if ctx.patient is not None else None,
        )
        # the reading each (scope, measurement, pick) picks on this encounter: one pick, many bands
        picks: dict[tuple[str, str, str], Reading | None] = {}
        ref = encounter.ref
        for rule in rules:
            if rule.measure is not None and not _eligible(rule.measure, ref, measure_results):
                continue
            if rule.when is not None:
                assert criteria is not None and facts is not None
                trail = criteria.criterion(rule.when, facts, scope)
                if trail.met:
                    evidence = tuple(unique_evidence(trail.all_evidence())[:MAX_CODE_EVIDENCE])
                    out.append(_code(rule, encounter, trail_because(trail), evidence, trail))
                continue
            assert rule.measurement is not None
            key = (rule.scope, rule.measurement, rule.pick)
            if key not in picks:
                if rule.scope == "period-to-date":
                    to_date = readings.between(rule.measurement, period[0], encounter.when.start_day)
                    picks[key] = pick_latest_day(to_date, rule.pick)
                else:
                    picks[key] = pick_latest_day(attached.get(rule.measurement, []), rule.pick)
            found = _apply(rule, encounter, picks[key])
            if found is not None:
                out.append(found)
    return out


def trail_because(trail: Trail) -> str:
    """A one-line reason from a criterion's trail: its own words, or those of the criteria that held."""
    if trail.evidence or not trail.children:
        return f"{trail.label}: {trail.because}"
    held = [c for c in trail.children if c.met]
    return f"{trail.label}: " + "; ".join(f"{c.label} ({c.because})" for c in held or trail.children)


def unique_evidence(evidence: list[Evidence]) -> list[Evidence]:
    seen: set[tuple[str, str]] = set()
    out = []
    for item in evidence:
        if (item.ref, item.note) not in seen:
            seen.add((item.ref, item.note))
            out.append(item)
    return out


def _eligible(measure_id: str, encounter_ref: str, results: Mapping[str, MeasureResult]) -> bool:
    """A measure-gated rule reports only on the measure's qualifying encounters of a denominator patient."""
    result = results.get(measure_id)
    if result is None or not result.groups or not result.groups[0].member("denominator"):
        return False
    return encounter_ref in result.qualifying_encounters


def _apply(rule: CodeRule, encounter: EncounterRecord, picked: Reading | None) -> QualityCode | None:
    """The rule's code when the reading picked for its measurement (None: none) is in its band, or missing."""
    assert rule.measurement is not None and encounter.when is not None
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
    return _code(rule, encounter, because, (Evidence.later(picked.observation, picked.describe),))


def _code(
    rule: CodeRule,
    encounter: EncounterRecord,
    because: str,
    evidence: tuple[Evidence, ...],
    trail: Trail | None = None,
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
        trail=trail,
    )
