"""MIPS claims quality-data codes chosen per visit, by CMS's claims specification of the year. Pure.

Eligibility (the claims denominator, ``rules/claims_denominators.py``): a visit in the period becomes a claim
line whose encounter code is the CPT/HCPCS codes of Encounter.type (with ConceptMap additions); diagnoses are
the ICD-10-CM codes of the encounter's diagnosis Conditions and reasonCode, and of every Condition active on
the date of service (onset on or before it, not abated before it, clinical status active/recurrence/relapse or
unstated, not refuted or entered in error): a claim carries the problems the clinician addressed, and FHIR
feeds seldom link them to the visit; age is the age on the date of service (the encounter's first day); sex
is Patient.gender (male M, female F; rows listing both sexes admit any); modifiers and place of service come
from Encounter.class (``CLASS_TO_CLAIM``). The line is in a measure's denominator when some row of that year's
file lists its encounter code and admits its age, sex, modifiers and place of service, and, where the measure
lists diagnoses, one of its diagnoses on a row that admits it too. The rules table's ``eligible`` criterion is
added only where the specification needs more than the rows say.

Outcome: for an eligible line, initial population and denominator are taken as met, and exclusions,
numerator and exceptions are judged on the record as it stood at the end of the visit's day (an
encounter-based measure judges the visit as its episode). A line carrying a diagnosis the year lists as a
denominator exclusion (DX_CODE_PD_Exl) reports the option marked ``listed_exclusion``. Otherwise the outcome
(met, not met, excluded, exception) picks the category, and the first option of that category whose ``when``
holds gives the codes CMS's claims single-source file lists for the measure and year. A measure is not judged
at all for a patient none of whose visits carries one of its encounter codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from ..contexts import PatientContext
from ..criteria.facts import Facts
from ..criteria.judge import Criteria, age_on
from ..criteria.spans import span
from ..findings import GroupResult, QualityCode, Trail
from ..rules.claims_denominators import GENDER_OF, ClaimLine, ClaimsDenominator, ClaimsYear, icd_key
from ..rules.engine import (
    MAX_CODE_EVIDENCE,
    encounter_in_period,
    trail_because,
    unique_evidence,
)
from ..rules.facts import Readings
from ..rules.loader import RuleSet
from ..rules.measure_schema import ClaimsOption, ClaimsYears, MeasureDef, MeasureGroup
from ..rules.schema import code_system_of
from ..rules.timing import Scope, Span
from ..sources.records import ConditionRecord, EncounterRecord
from ..terminology import CPT, HCPCS, ICD10CM
from .evaluate import MeasureEvaluator

OUTCOME_CATEGORY = {"met": "met", "not-met": "not_met", "excluded": "exclusion", "exception": "exception"}
_DECIDING_POPULATION = {
    "met": "numerator",
    "not-met": "numerator",
    "excluded": "denominator-exclusion",
    "exception": "denominator-exception",
}
CLASS_TO_CLAIM: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "VR": (frozenset({"95"}), frozenset({"02"})),
    "HH": (frozenset(), frozenset({"12"})),
    "EMER": (frozenset(), frozenset({"23"})),
    "IMP": (frozenset(), frozenset({"21"})),
    "ACUTE": (frozenset(), frozenset({"21"})),
}
"""Encounter.class (v3 ActCode) -> (modifiers, places of service) of the claim line: a virtual visit is
synchronous telehealth (modifier 95, POS 02), home health is the home (POS 12), an emergency visit the
hospital emergency room (POS 23), an inpatient stay the inpatient hospital (POS 21). Anything else implies
neither, so rows that forbid a modifier or place admit it."""
_CLAIM_SYSTEMS = frozenset({CPT, HCPCS})
_INACTIVE = frozenset({"inactive", "remission", "resolved"})
_NOT_A_DIAGNOSIS = frozenset({"refuted", "entered-in-error"})

Entry = tuple[int, MeasureGroup, ClaimsYears, ClaimsDenominator]


def claims_codes(
    ctx: PatientContext,
    readings: Readings,
    ruleset: RuleSet,
    evaluator: MeasureEvaluator,
    measures: Iterable[MeasureDef],
    claims_year: ClaimsYear,
    period: tuple[date, date],
) -> list[QualityCode]:
    year = period[0].year
    lines = claim_lines(ctx, claims_year, period, frozenset(ruleset.table.encounter_statuses_without_codes))
    if not lines:
        return []
    criteria = evaluator.criteria
    out: list[QualityCode] = []
    for measure in measures:
        entries: list[Entry] = []
        for index, group in enumerate(measure.groups):
            entry = group.claims_for(year)
            denominator = claims_year.get(_rate_key(group.mips_rate or measure.mips or ""))
            if entry is not None and denominator is not None:
                entries.append((index, group, entry, denominator))
        if not entries:
            continue
        judged_on: dict[date, list[GroupResult]] = {}
        for encounter, line in lines:
            eligible = [(e, why) for e in entries if (why := e[3].eligible(line)) is not None]
            if not eligible:
                continue  # cheap: no judging for a visit no group's rows admit
            assert encounter.when is not None
            day = encounter.when.end_day  # the record as it stood at the end of the visit
            groups = judged_on.get(day) if measure.episode is None else None
            if groups is None:
                groups = evaluator.judge_visit(measure, ctx, readings, encounter, day)
                if measure.episode is None:
                    judged_on[day] = groups
            seen: set[tuple[str, tuple[str, ...]]] = set()
            scope = Scope(
                period[0],
                period[1],
                {"encounter": span(encounter) or Span(None, None, ref=encounter.ref)},
                day,
                ctx.patient.birth_date if ctx.patient is not None else None,
            )
            facts = criteria.facts(ctx, readings, day)
            for (g_index, group, entry, denominator), (encounter_code, diagnosis) in eligible:
                if entry.eligible is not None and not criteria.criterion(entry.eligible, facts, scope).met:
                    continue
                listed = denominator.excluded_by(line)
                marked = next((o for o in entry.exclusion if o.listed_exclusion), None)
                rate = group.mips_rate or measure.mips or ""
                eligible_by = f"in the {year} claims denominator by {encounter_code}" + (
                    f" with {diagnosis}" if diagnosis else ""
                )
                chosen: tuple[ClaimsOption, Trail | None] | None
                if listed is not None and marked is not None:
                    outcome, category, deciding = "excluded", "exclusion", None
                    chosen = marked, None
                    reason = f"{listed} is listed as a denominator exclusion"
                else:
                    outcome = groups[g_index].outcome()
                    category_of = OUTCOME_CATEGORY.get(outcome)
                    if category_of is None:
                        continue
                    category = category_of
                    chosen = _choose(entry.options(category), criteria, facts, scope)
                    deciding = _population_trail(groups[g_index], _DECIDING_POPULATION[outcome])
                    reason = ""
                if chosen is None:
                    continue
                option, trail = chosen
                because = f"MIPS {rate} ({measure.id}) {outcome} as of {day.isoformat()}: {option.label}"
                if reason:
                    because += f"; {reason}"
                elif trail is not None and (category in ("exclusion", "exception") or deciding is None):
                    because += f"; {trail_because(trail)}"  # which exclusion: the option's own criterion
                elif deciding is not None:
                    because += f"; {deciding.label}: {deciding.because}"
                because += f"; {eligible_by}"
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
                            serviced=line.day,
                            because=because,
                            evidence=evidence,
                            measure=measure.id,
                            outcome=outcome,
                            trail=trail if trail is not None else deciding,
                        )
                    )
    return out


def claim_lines(
    ctx: PatientContext, claims_year: ClaimsYear, period: tuple[date, date], skip_statuses: frozenset[str]
) -> list[tuple[EncounterRecord, ClaimLine]]:
    """The patient's visits in the period that carry an encounter code some measure of the year lists."""
    out: list[tuple[EncounterRecord, ClaimLine]] = []
    patient = ctx.patient
    for encounter in ctx.encounters:
        codes = frozenset(code for system, code in encounter.type_codes if system in _CLAIM_SYSTEMS)
        if (
            not codes & claims_year.encounter_codes
            or encounter.status in skip_statuses
            or not encounter_in_period(encounter, *period)
        ):
            continue
        assert encounter.when is not None
        day = encounter.when.start_day
        modifiers, places = CLASS_TO_CLAIM.get(encounter.class_code or "", (frozenset(), frozenset()))
        birth = patient.birth_date if patient is not None else None
        out.append(
            (
                encounter,
                ClaimLine(
                    encounter.ref,
                    day,
                    codes,
                    _diagnoses(ctx, encounter, day),
                    _procedures(ctx, day),
                    age_on(birth, day) if birth is not None else None,
                    GENDER_OF.get(patient.gender or "") if patient is not None else None,
                    modifiers,
                    places,
                ),
            )
        )
    return out


def _diagnoses(ctx: PatientContext, encounter: EncounterRecord, day: date) -> frozenset[str]:
    out = {icd_key(code) for system, code in encounter.reason_codes if system == ICD10CM}
    for ref in encounter.diagnoses:
        linked = ctx.condition_by_ref.get(ref)
        if linked is not None:
            out |= _icd(linked)
    for condition in ctx.conditions:
        if _active_on(condition, day):
            out |= _icd(condition)
    return frozenset(out)


def _icd(condition: ConditionRecord) -> set[str]:
    return {icd_key(code) for system, code in condition.codes if system == ICD10CM}


def _active_on(condition: ConditionRecord, day: date) -> bool:
    if condition.verification_status in _NOT_A_DIAGNOSIS or condition.clinical_status in _INACTIVE:
        return False
    began = condition.onset or condition.recorded
    if began is None or began.start_day > day:
        return False
    return condition.abatement is None or condition.abatement.end_day >= day


def _procedures(ctx: PatientContext, day: date) -> frozenset[str]:
    return frozenset(
        code
        for procedure in ctx.events.get("Procedure", ())
        if procedure.when is not None and procedure.when.start_day == day and not procedure.not_done
        for system, code in procedure.codes
        if system in _CLAIM_SYSTEMS
    )


def _rate_key(rate: str) -> str:
    """The claims data's key: '001', '226.01'."""
    base, _, sub = rate.partition(".")
    return base.zfill(3) + (f".{sub.zfill(2)}" if sub and int(sub) else "")


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
