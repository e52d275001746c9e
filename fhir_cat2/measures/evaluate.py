"""Measures on top of the criteria core: the populations of a measure definition, for one patient.

Pure: a patient context and readings in, population memberships with their explanation trail out.
Proportion semantics: denominator within initial population; exclusions within denominator; numerator
counts only when not excluded; exceptions only for denominator members neither excluded nor in numerator.
Episode-based measures judge every episode on its own, with its anchor bound to it: each encounter (CMS22,
``encounter``) or procedure (CMS133, ``procedure``).
"""

from __future__ import annotations

from datetime import date

from ..contexts import PatientContext
from ..criteria.facts import Facts
from ..criteria.judge import Criteria
from ..findings import EpisodeResult, GroupResult, MeasureResult, PopulationResult, Stratum, Trail
from ..rules.facts import Readings
from ..rules.loader import RuleSet
from ..rules.measure_schema import POPULATION_ORDER, MeasureDef, MeasureGroup
from ..rules.timing import Scope, Span
from ..sources.records import EncounterRecord

_OUTSIDE = Trail("initial population", False, "the record has none of the codes its criteria require")
_OUTSIDE_NOTES = {"initial-population": "", "denominator": "not in the initial population"}

_JUDGING_ORDER = (
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "numerator",
    "numerator-exclusion",
    "denominator-exception",
)
"""Each population after those its gate reads (``_gate``); results are listed in ``POPULATION_ORDER``."""


class MeasureEvaluator:
    """The measures of a rules table for one period, evaluated per patient on the run's criteria."""

    def __init__(
        self,
        ruleset: RuleSet,
        period_start: date,
        period_end: date,
        *,
        thorough: bool = True,
        deviations: frozenset[str] = frozenset(),
    ) -> None:
        self.ruleset = ruleset
        self.period_start = period_start
        self.period_end = period_end
        self.criteria = Criteria(ruleset, thorough=thorough, deviations=deviations)
        """The criteria the populations are judged with (shared with the code rules: so is the memo)."""

    def evaluate(
        self,
        measure: MeasureDef,
        ctx: PatientContext,
        readings: Readings,
        *,
        as_of: date | None = None,
    ) -> MeasureResult:
        """Populations of ``measure``; with ``as_of``, on the record as it stood at the end of that day."""
        scope = Scope(self.period_start, self.period_end, {}, as_of, _birth(ctx))
        facts = self.criteria.facts(ctx, readings, as_of)
        if not self.criteria.thorough and not self._possible(measure, facts):
            return self._outside(measure, ctx.patient_id)
        if measure.episode is not None:
            return self._evaluate_episodes(measure, facts, scope)
        groups: list[GroupResult] = []
        qualifying: set[str] = set()
        evaluated: set[str] = set()
        for group in measure.groups:
            result = self._group(group, facts, scope)
            groups.append(result)
            in_population = result.member("initial-population")
            for population in result.populations:
                qualifies = population.code == "initial-population" and population.member
                if population.trail is None or not (qualifies or in_population):
                    continue
                refs: set[str] = set()
                _add_references(population.trail, refs)
                if qualifies:
                    qualifying.update(r for r in refs if r.startswith("Encounter/"))
                if in_population:
                    evaluated |= refs
        return MeasureResult(
            measure.id, ctx.patient_id, groups, tuple(sorted(evaluated)), frozenset(qualifying)
        )

    def _possible(self, measure: MeasureDef, facts: Facts) -> bool:
        """False when no group's initial population can hold on this record: it requires (through all-of,
        any-of and library uses) resources with codes the record has none of."""
        return any(
            self.criteria.possible(group.populations["initial-population"].criteria, facts)
            for group in measure.groups
        )

    def _outside(self, measure: MeasureDef, patient_id: str) -> MeasureResult:
        """The result of a patient whose record cannot meet any initial population, without judging it:
        every population false, as judging would find (the initial population's requirements are necessary
        conditions). Its evidence is never used, the patient being in no population. Explain judges all."""
        groups = []
        for group in measure.groups:
            populations = [
                PopulationResult(
                    code,
                    population.id,
                    False,
                    _OUTSIDE if code == "initial-population" else None,
                    _OUTSIDE_NOTES.get(code, "not in the denominator"),
                    0 if measure.episode is not None else None,
                )
                for code in POPULATION_ORDER
                if (population := group.populations.get(code)) is not None  # type: ignore[call-overload]
            ]
            strata = tuple(Stratum(s.id, {p.code: 0 for p in populations}) for s in group.stratifiers)
            groups.append(GroupResult(group.id, populations, strata))
        return MeasureResult(
            measure.id, patient_id, groups, (), frozenset(), [] if measure.episode is not None else None
        )

    def judge_visit(
        self,
        measure: MeasureDef,
        ctx: PatientContext,
        readings: Readings,
        visit: EncounterRecord,
        as_of: date,
    ) -> list[GroupResult]:
        """The groups of ``measure`` for a visit a claims denominator admits (``measures/claims.py``).

        The claim line's eligibility stands for the initial population and denominator (taken as met);
        exclusions, numerator and exceptions are judged on the record as it stood at the end of ``as_of``.
        An encounter-based measure judges the visit as its episode.
        """
        scope = Scope(self.period_start, self.period_end, {}, as_of, _birth(ctx))
        facts = self.criteria.facts(ctx, readings, as_of)
        if measure.episode_anchor is not None:
            scope = scope.bind(measure.episode_anchor, facts.span(visit) or Span(None, None, ref=visit.ref))
        return [self._group(group, facts, scope, _eligible_members(group)) for group in measure.groups]

    def _evaluate_episodes(self, measure: MeasureDef, facts: Facts, scope: Scope) -> MeasureResult:
        assert measure.episode is not None
        episodes: list[EpisodeResult] = []
        evaluated: set[str] = set()
        qualifying: set[str] = set()
        for record in self.criteria.matching(measure.episode, facts, scope)[0]:
            assert measure.episode_anchor is not None
            when = getattr(record, "when", None)
            if when is None:
                continue  # an undated procedure is in no period: no episode
            episode_scope = scope.bind(
                measure.episode_anchor, facts.span(record) or Span(None, None, ref=record.ref)
            )
            groups = [self._group(group, facts, episode_scope) for group in measure.groups]
            episodes.append(EpisodeResult(record.ref, when.start_day, groups))
            if any(g.member("initial-population") for g in groups):
                qualifying.add(record.ref)
                evaluated.add(record.ref)
                for judged in groups:
                    for population in judged.populations:
                        if population.trail is not None:
                            _add_references(population.trail, evaluated)
        totals: list[GroupResult] = []
        for g_index, group in enumerate(measure.groups):
            populations = []
            for code in POPULATION_ORDER:
                population = group.populations.get(code)  # type: ignore[call-overload]
                if population is None:
                    continue
                count = sum(1 for e in episodes if e.groups[g_index].member(code))  # few episodes
                populations.append(PopulationResult(code, population.id, count > 0, None, "", count))
            strata = tuple(
                Stratum(
                    stratifier.id,
                    {
                        p.code: sum(e.groups[g_index].strata[s_index].counts.get(p.code, 0) for e in episodes)
                        for p in populations
                    },
                )
                for s_index, stratifier in enumerate(group.stratifiers)
            )
            totals.append(GroupResult(group.id, populations, strata))
        return MeasureResult(
            measure.id,
            facts.ctx.patient_id,
            totals,
            tuple(sorted(evaluated)),
            frozenset(qualifying),
            episodes,
        )

    def _group(
        self,
        group: MeasureGroup,
        facts: Facts,
        scope: Scope,
        fixed: dict[str, PopulationResult] | None = None,
    ) -> GroupResult:
        members: dict[str, bool] = {}
        results: dict[str, PopulationResult] = {}
        for code in _JUDGING_ORDER:  # an exception is judged after the numerator it gives way to
            population = group.populations.get(code)  # type: ignore[call-overload]
            if population is None:
                continue
            if fixed is not None and code in fixed:
                members[code] = fixed[code].member
                results[code] = fixed[code]
                continue
            gate, note = self._gate(code, members)
            if gate is None:
                results[code] = PopulationResult(code, population.id, False, None, note)
                members[code] = False
                continue
            trail = self.criteria.criterion(population.criteria, facts, scope, members)
            member = trail.met and gate
            members[code] = member
            results[code] = PopulationResult(code, population.id, member, trail, note if trail.met else "")
        ordered = [results[code] for code in POPULATION_ORDER if code in results]
        return GroupResult(group.id, ordered, self._strata(group, ordered, facts, scope, members))

    def _strata(
        self,
        group: MeasureGroup,
        results: list[PopulationResult],
        facts: Facts,
        scope: Scope,
        members: dict[str, bool],
    ) -> tuple[Stratum, ...]:
        """The group's populations counted within each stratifier (judged for the initial population only)."""
        if not group.stratifiers:
            return ()
        in_population = members.get("initial-population", False)
        strata = []
        for stratifier in group.stratifiers:
            inside = in_population and self.criteria.criterion(stratifier.criteria, facts, scope, members).met
            strata.append(Stratum(stratifier.id, {p.code: p.tally if inside else 0 for p in results}))
        return tuple(strata)

    @staticmethod
    def _gate(code: str, members: dict[str, bool]) -> tuple[bool | None, str]:
        """(None: do not evaluate | membership allowed, note)."""
        if code == "initial-population":
            return True, ""
        if code == "denominator":
            return (
                (True, "") if members.get("initial-population") else (None, "not in the initial population")
            )
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
            if members.get("denominator-exclusion"):
                return None, "excluded from the denominator"
            if members.get("numerator"):
                return None, "already in the numerator"
            return True, ""
        return True, ""


def _birth(ctx: PatientContext) -> date | None:
    """The patient's birth date (date anchor ``birth``), when known."""
    return ctx.patient.birth_date if ctx.patient is not None else None


def _add_references(trail: Trail, references: set[str]) -> None:
    """Add the references (Type/id) of every evidence of ``trail`` and its sub-trails."""
    pending = [trail]
    while pending:
        current = pending.pop()
        for evidence in current.evidence:
            if "/" in evidence.ref:
                references.add(evidence.ref)
        pending.extend(current.children)


CLAIMS_ELIGIBLE = "eligible by the claims denominator of the visit"


def _eligible_members(group: MeasureGroup) -> dict[str, PopulationResult]:
    return {
        code: PopulationResult(code, population.id, True, None, CLAIMS_ELIGIBLE)
        for code, population in group.populations.items()
        if code in ("initial-population", "denominator")
    }
