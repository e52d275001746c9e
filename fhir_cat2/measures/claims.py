"""MIPS claims quality-data codes chosen from a measure's outcome, per encounter. Pure.

On each encounter that qualifies the patient for a measure (or each episode of an encounter-based measure),
the patient's membership of the denominator is taken from the whole period, and exclusions, numerator and
exceptions are judged on the record as it stood at the end of that encounter's day: the outcome (met, not
met, excluded, exception) picks the category, and the first option of that category whose ``when`` holds
gives the codes CMS's claims single-source file lists for the measure and year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from ..contexts import PatientContext
from ..criteria.facts import Facts
from ..criteria.judge import Criteria
from ..criteria.spans import span
from ..findings import GroupResult, MeasureResult, QualityCode, Trail
from ..rules.engine import (
    MAX_CODE_EVIDENCE,
    encounter_in_period,
    trail_because,
    unique_evidence,
)
from ..rules.facts import Readings
from ..rules.loader import RuleSet
from ..rules.schema import ClaimsOption, MeasureDef, code_system_of
from ..rules.timing import Scope, Span
from .evaluate import MeasureEvaluator

OUTCOME_CATEGORY = {"met": "met", "not-met": "not_met", "excluded": "exclusion", "exception": "exception"}
_DECIDING_POPULATION = {
    "met": "numerator",
    "not-met": "numerator",
    "excluded": "denominator-exclusion",
    "exception": "denominator-exception",
}


def claims_codes(
    ctx: PatientContext,
    readings: Readings,
    ruleset: RuleSet,
    evaluator: MeasureEvaluator,
    measures: Iterable[MeasureDef],
    results: Mapping[str, MeasureResult],
    period: tuple[date, date],
) -> list[QualityCode]:
    year = period[0].year
    criteria = evaluator.criteria
    skip_statuses = set(ruleset.table.encounter_statuses_without_codes)
    out: list[QualityCode] = []
    for measure in measures:
        entries = [(index, group, group.claims_for(year)) for index, group in enumerate(measure.groups)]
        if not any(entry for _, _, entry in entries):
            continue
        result = results.get(measure.id)
        if result is None or not result.qualifying_encounters:
            continue
        as_of_results: dict[date, MeasureResult] = {}
        for encounter in ctx.encounters:
            if (
                encounter.ref not in result.qualifying_encounters
                or encounter.status in skip_statuses
                or not encounter_in_period(encounter, *period)
            ):
                continue
            assert encounter.when is not None
            day = encounter.when.end_day
            judged = as_of_results.get(day)
            if judged is None:
                judged = evaluator.evaluate(measure, ctx, readings, as_of=day, denominators_from=result)
                as_of_results[day] = judged
            groups = _groups_for(judged, encounter.ref)
            if groups is None:
                continue
            seen: set[tuple[str, tuple[str, ...]]] = set()
            scope = Scope(
                period[0],
                period[1],
                {"encounter": span(encounter) or Span(None, None, ref=encounter.ref)},
                day,
            )
            facts = criteria.facts(ctx, readings, day)
            for g_index, group, entry in entries:
                if entry is None:
                    continue
                outcome = groups[g_index].outcome()
                category = OUTCOME_CATEGORY.get(outcome)
                if category is None:
                    continue
                if entry.eligible is not None and not criteria.criterion(entry.eligible, facts, scope).met:
                    continue
                chosen = _choose(entry.options(category), criteria, facts, scope)
                if chosen is None:
                    continue
                option, trail = chosen
                rate = group.mips_rate or measure.mips or ""
                deciding = _population_trail(groups[g_index], _DECIDING_POPULATION[outcome])
                because = f"MIPS {rate} ({measure.id}) {outcome} as of {day.isoformat()}: {option.label}"
                if trail is not None and (category in ("exclusion", "exception") or deciding is None):
                    because += f"; {trail_because(trail)}"  # which exclusion: the option's own criterion
                elif deciding is not None:
                    because += f"; {deciding.label}: {deciding.because}"
                evidence_from = [t for t in (deciding, trail) if t is not None]
                evidence = tuple(
                    unique_evidence([e for t in evidence_from for e in t.all_evidence()])[:MAX_CODE_EVIDENCE]
                )
                for code, modifiers in option.parsed():
                    if (code, modifiers) in seen:
                        continue  # a code two rates share (226 and 226.01 both carry G9902) is reported once
                    seen.add((code, modifiers))
                    out.append(
                        QualityCode(
                            rule_id=f"{measure.id.lower()}-{rate}-{category.replace('_', '-')}",
                            code=code,
                            system=code_system_of(code),
                            modifiers=modifiers,
                            label=option.label,
                            encounter_ref=encounter.ref,
                            serviced=encounter.when.start_day,
                            because=because,
                            evidence=evidence,
                            measure=measure.id,
                            outcome=outcome,
                            trail=trail if trail is not None else deciding,
                        )
                    )
    return out


def _groups_for(result: MeasureResult, encounter_ref: str) -> list[GroupResult] | None:
    if result.episodes is None:
        return result.groups
    for episode in result.episodes:
        if episode.encounter_ref == encounter_ref:
            return episode.groups
    return None


def _population_trail(group: GroupResult, code: str) -> Trail | None:
    for population in group.populations:
        if population.code == code:
            return population.trail
    return None


def _choose(
    options: tuple[ClaimsOption, ...], criteria: Criteria, facts: Facts, scope: Scope
) -> tuple[ClaimsOption, Trail | None] | None:
    for option in options:
        if option.when is None:
            return option, None
        trail = criteria.criterion(option.when, facts, scope)
        if trail.met:
            return option, trail
    return None
