"""Criteria and measure definitions of the rules table, evaluated for one patient.

Pure: a patient context and readings in, population memberships with their explanation trail out.
Proportion semantics: denominator within initial population; exclusions within denominator; numerator
counts only when not excluded; exceptions only for denominator members neither excluded nor in numerator.
Encounter-based measures (CMS22) judge every episode encounter on its own, with ``encounter`` bound to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from ..contexts import PatientContext
from ..criteria.spans import distinct_end_days, span
from ..criteria.words import (
    Why,
    age_note,
    age_words,
    all_words,
    any_words,
    describe,
    describe_not,
    does_not_hold,
    exists_words,
    last_words,
    lowest_words,
    no_common_day_words,
    no_reading_words,
    not_words,
    population_words,
    readings_words,
    relabelled,
    unknown_window_words,
)
from ..findings import EpisodeResult, Evidence, GroupResult, MeasureResult, PopulationResult, Trail
from ..rules.facts import Reading, Readings
from ..rules.loader import RuleSet, free_anchors
from ..rules.schema import (
    POPULATION_ORDER,
    AgeCriterion,
    Criterion,
    ExistsCriterion,
    LatestDayCriterion,
    MeasureDef,
    MeasureGroup,
    ReadingsCriterion,
    ValueTest,
    Window,
)
from ..rules.timing import DateExpr, Scope, Span
from ..sources.records import (
    Code,
    ConditionRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    ResourceRecord,
)

MAX_EVIDENCE = 50
_UNSEEN: Any = object()
_CONDITION_NOT_VALID = frozenset({"refuted", "entered-in-error"})


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass
class Facts:
    """What criteria read: the patient's record and readings (possibly as of a day).

    ``memo`` holds criteria already judged on these facts, by criterion and the anchors it reads: an
    encounter-based measure asks the same questions of the same encounters many times over.
    """

    ctx: PatientContext
    readings: Readings
    memo: dict[Any, Any] = field(default_factory=dict)
    possible: dict[_Need, bool] = field(default_factory=dict)
    """Per static requirement (see ``_Need``): whether the record holds anything that could meet it."""
    spans: dict[int, Span | None] = field(default_factory=dict)
    """When each record applies (``_span``, default timing), by record id: shared by the facts of one patient
    as of any day, which hold the same records."""

    pools: dict[tuple[str, frozenset[Code]], list[ResourceRecord]] = field(default_factory=dict)
    """Records of a type with one of the codes (``pool``), by (type, codes)."""
    pool_spans: dict[tuple[int, str], list[Span | None]] = field(default_factory=dict)
    """When each record of a pool applies (``spans_of``), by the pool's id and the timing read."""

    def pool(self, resource_type: str, codes: frozenset[Code]) -> list[ResourceRecord]:
        """The records an ``exists`` looks at: of the type, with one of ``codes`` when given (not to be
        changed: the same exists is asked of many encounters)."""
        found = self.pools.get((resource_type, codes))
        if found is None:
            found = self.ctx.with_codes(resource_type, codes) if codes else self.ctx.resources(resource_type)
            self.pools[(resource_type, codes)] = found
        return found

    def spans_of(self, pool: list[ResourceRecord], timing_of: str) -> list[Span | None]:
        """``span`` of every record of a ``pool`` (many exists read one pool: the same encounters)."""
        found = self.pool_spans.get((id(pool), timing_of))
        if found is None:
            found = self.pool_spans[(id(pool), timing_of)] = [self.span(r, timing_of) for r in pool]
        return found

    def span(self, record: ResourceRecord, timing_of: str = "default") -> Span | None:
        if timing_of != "default":
            return span(record, timing_of)
        found = self.spans.get(id(record), _UNSEEN)
        if found is _UNSEEN:
            found = self.spans[id(record)] = span(record)
        return found  # type: ignore[no-any-return]


class _Need:
    """What a criterion needs in the record to have any chance of holding: a necessary condition only.

    kind: "exists" (a resource of a type with one of ``codes``),
    "readings" (readings of every measurement in ``names``), "all" / "any" over ``parts``.
    Only leaf criteria are cut short: an impossible leaf yields no evidence, so the outputs do not change.
    """

    __slots__ = ("codes", "kind", "names", "parts", "resource")

    def __init__(
        self,
        kind: str,
        *,
        resource: str = "",
        codes: frozenset[Code] = frozenset(),
        names: tuple[str, ...] = (),
        parts: tuple[_Need, ...] = (),
    ) -> None:
        self.kind = kind
        self.resource = resource
        self.codes = codes
        self.names = names
        self.parts = parts

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.resource, self.codes, self.names, tuple(id(part) for part in self.parts))

    def holds(self, facts: Facts) -> bool:
        known = facts.possible.get(self)
        if known is None:
            if self.kind == "exists":
                known = facts.ctx.has_codes(self.resource, self.codes)
            elif self.kind == "readings":
                known = all(facts.readings.of(name) for name in self.names)
            elif self.kind == "all":
                known = all(part.holds(facts) for part in self.parts)
            else:  # any
                known = any(part.holds(facts) for part in self.parts)
            facts.possible[self] = known
        return known


_NO_MEMBERS: dict[str, bool] = {}
"""Population memberships when none are given (read only)."""


class _Node:
    """A criterion prepared for judging (once per evaluator): the judge of its kind, its prepared
    sub-criteria, what it needs in the record (None: not cut short), and the anchors that key its memo
    (None: not memoised, because it is cheap or reads population memberships)."""

    __slots__ = ("anchors", "child", "children", "criterion", "impossible", "judge", "need", "required")

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion
        self.judge: Callable[[_Node, Facts, Scope, dict[str, bool]], Trail]
        self.children: tuple[_Node, ...] = ()
        self.child: _Node | None = None
        self.need: _Need | None = None
        self.anchors: tuple[str, ...] | None = None
        self.impossible: Trail
        self.required: _Need | None = None
        """Resources it requires (see ``MeasureEvaluator.possible``), once asked."""


class MeasureEvaluator:
    def __init__(
        self, ruleset: RuleSet, period_start: date, period_end: date, *, thorough: bool = True
    ) -> None:
        self.ruleset = ruleset
        self.period_start = period_start
        self.period_end = period_end
        self.thorough = thorough
        """True: judge every sub-criterion (explain shows them all). False: stop an all-of at its first
        failure and an any-of at its first success (replay; the outcome is the same, the trail shorter)."""
        self._nodes: dict[int, _Node] = {}
        self._plans: dict[int, _ExistsPlan] = {}
        self._selections: dict[int, tuple[object, tuple[str, ...]]] = {}
        self._selections_by_how: dict[tuple[Any, ...], object] = {}
        self._needs: dict[tuple[Any, ...], _Need] = {}
        self._keep: list[Any] = []
        self._patient: (
            tuple[PatientContext, Readings, dict[date | None, Facts], dict[int, Span | None]] | None
        ) = None

    def facts(self, ctx: PatientContext, readings: Readings, as_of: date | None = None) -> Facts:
        """The facts of one patient (as of a day), shared by every measure and rule so the memo is too."""
        if self._patient is None or self._patient[0] is not ctx or self._patient[1] is not readings:
            self._patient = (ctx, readings, {}, {})
        _, _, cache, spans = self._patient
        found = cache.get(as_of)
        if found is None:
            if as_of is not None:
                found = Facts(ctx.as_of(as_of), readings.as_of(as_of), spans=spans)
            else:
                found = Facts(ctx, readings, spans=spans)
            cache[as_of] = found
        return found

    @property
    def scope(self) -> Scope:
        return Scope(self.period_start, self.period_end)

    # ------------------------------------------------------------------------------------------ measure

    def evaluate(
        self,
        measure: MeasureDef,
        ctx: PatientContext,
        readings: Readings,
        *,
        as_of: date | None = None,
        denominators_from: MeasureResult | None = None,
    ) -> MeasureResult:
        """Populations of ``measure``; with ``as_of``, on the record as it stood at the end of that day.

        ``denominators_from``: take initial-population and denominator membership from this (full-period)
        result and judge only exclusions, numerator and exceptions as of the day: a claim reports the
        patient's status at the visit for a measure the patient belongs to in that year.
        """
        scope = Scope(self.period_start, self.period_end, {}, as_of)
        facts = self.facts(ctx, readings, as_of)
        if measure.basis == "encounter":
            return self._evaluate_episodes(measure, facts, scope, denominators_from)
        groups: list[GroupResult] = []
        qualifying: set[str] = set()
        evaluated: set[str] = set()
        for index, group in enumerate(measure.groups):
            fixed = _fixed_members(denominators_from.groups[index]) if denominators_from is not None else None
            result = self._group(group, facts, scope, fixed)
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

    def _evaluate_episodes(
        self, measure: MeasureDef, facts: Facts, scope: Scope, denominators_from: MeasureResult | None = None
    ) -> MeasureResult:
        assert measure.episode is not None
        known = {e.encounter_ref: e for e in (denominators_from.episodes or [])} if denominators_from else {}
        episodes: list[EpisodeResult] = []
        evaluated: set[str] = set()
        qualifying: set[str] = set()
        for record in self._matching(measure.episode, facts, scope)[0]:
            assert isinstance(record, EncounterRecord) and record.when is not None
            episode_scope = scope.bind("encounter", facts.span(record) or Span(None, None))
            before = known.get(record.ref)
            groups = [
                self._group(group, facts, episode_scope, _fixed_members(before.groups[i]) if before else None)
                for i, group in enumerate(measure.groups)
            ]
            episodes.append(EpisodeResult(record.ref, record.when.start_day, groups))
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
            totals.append(GroupResult(group.id, populations))
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
        results: list[PopulationResult] = []
        for code in POPULATION_ORDER:
            population = group.populations.get(code)  # type: ignore[call-overload]
            if population is None:
                continue
            if fixed is not None and code in fixed:
                members[code] = fixed[code].member
                results.append(fixed[code])
                continue
            gate, note = self._gate(code, members)
            if gate is None:
                results.append(PopulationResult(code, population.id, False, None, note))
                members[code] = False
                continue
            trail = self.criterion(population.criteria, facts, scope, members)
            member = trail.met and gate
            members[code] = member
            results.append(PopulationResult(code, population.id, member, trail, note if trail.met else ""))
        return GroupResult(group.id, results)

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

    # ------------------------------------------------------------------------------------------ criteria

    def _node(self, criterion: Criterion) -> _Node:
        node = self._nodes.get(id(criterion))
        return node if node is not None else self._compile(criterion)

    def _compile(self, criterion: Criterion) -> _Node:
        """Prepare ``criterion`` (and its sub-criteria) for judging: once per criterion and evaluator."""
        library = self.ruleset.table.library
        node = _Node(criterion)
        self._nodes[id(criterion)] = (
            node  # before the sub-criteria, so that a criterion met again is this node
        )
        self._keep.append(criterion)  # ids stay unique while the evaluator lives
        if criterion.all is not None:
            node.judge = self._judge_all
            node.children = tuple(self._node(child) for child in criterion.all)
        elif criterion.any is not None:
            node.judge = self._judge_any
            node.children = tuple(self._node(child) for child in criterion.any)
        elif criterion.not_ is not None:
            node.judge = self._judge_not
            node.child = self._node(criterion.not_)
        elif criterion.population is not None:
            node.judge = self._judge_population
        elif criterion.age is not None:
            node.judge = self._judge_age
        elif criterion.gender is not None:
            node.judge = self._judge_gender
        elif criterion.exists is not None:
            node.judge = self._judge_exists
        elif criterion.use is not None:
            node.judge = self._judge_use
            node.child = self._node(library[criterion.use]) if criterion.use in library else None
        elif criterion.readings is not None:
            node.judge = self._judge_readings
        else:
            node.judge = self._judge_latest_day
        if not self.thorough:  # explain judges every criterion, even what cannot hold
            node.need = self._need(criterion, node)
        # every kind but the cheap all/any/not (whose sub-criteria are memoised) and population memberships
        memoised = criterion.all is None and criterion.any is None and criterion.not_ is None
        if memoised and not _reads_populations(criterion, library):
            node.anchors = tuple(sorted(free_anchors(criterion, library)))
        label = criterion.label or (criterion.exists.label if criterion.exists is not None else None)
        node.impossible = Trail(
            label or criterion.use or "criterion", False, "nothing in the record could meet it"
        )
        shared = node.child
        if (
            criterion.use is not None
            and shared is not None
            and node.need is None
            and shared.criterion.label is not None
            and (criterion.label or shared.criterion.label) == shared.criterion.label
        ):
            # Judging this use is judging the library criterion: the trail is the same, and so is the memo key
            # (the use reads the anchors the library criterion reads). A use that can be cut short keeps its
            # node: what cannot hold is named by the use.
            if shared.anchors is None:
                shared.anchors = node.anchors
            self._nodes[id(criterion)] = shared
            return shared
        return node

    def _need(self, criterion: Criterion, node: _Node) -> _Need | None:
        """The static requirement of ``criterion``; None when it cannot be told cheaply."""
        if criterion.exists is not None:
            spec = criterion.exists
            codes = self.ruleset.resolve_codes(spec.codes, spec.valuesets)
            if codes:
                return self._shared_need(_Need("exists", resource=spec.resource, codes=codes))
        elif criterion.use is not None:
            return node.child.need if node.child is not None else None
        elif criterion.latest_day is not None and not criterion.latest_day.if_none:
            # any one measurement's readings could appear as evidence, even on a day lacking the others
            parts = tuple(
                self._shared_need(_Need("readings", names=(n,))) for n in criterion.latest_day.measurements
            )
            return self._shared_need(_Need("any", parts=parts))
        elif criterion.readings is not None and criterion.readings.min_count >= 1:
            return self._shared_need(_Need("readings", names=(criterion.readings.measurement,)))
        # all-of and any-of are never cut short here: a child judged before the impossible one may still
        # contribute evidence (evaluatedResource); their impossible leaves are cut instead.
        return None

    def _shared_need(self, need: _Need) -> _Need:
        """One object per distinct requirement, so that each is looked up in a record once."""
        return self._needs.setdefault(need.key, need)

    def possible(self, criterion: Criterion, facts: Facts) -> bool:
        """False when ``criterion`` cannot hold on this record: it requires (through all-of, any-of and
        library uses) a resource with codes that the record has none of. For callers that drop what does not
        hold (code rules)."""
        node = self._nodes.get(id(criterion))
        if node is None:
            node = self._compile(criterion)
        if node.required is None:
            node.required = self._shared_need(_Need("all", parts=tuple(self._required(node))))
        return node.required.holds(facts)

    def _required(self, node: _Node, depth: int = 0) -> list[_Need]:
        criterion = node.criterion
        if depth > 8:
            return []
        if criterion.exists is not None:
            spec = criterion.exists
            codes = self.ruleset.resolve_codes(spec.codes, spec.valuesets)
            return [self._shared_need(_Need("exists", resource=spec.resource, codes=codes))] if codes else []
        if criterion.use is not None and node.child is not None:
            return self._required(node.child, depth + 1)
        if criterion.all:
            return [need for child in node.children for need in self._required(child, depth + 1)]
        if criterion.any:
            # one alternative must hold, needing what it requires: nothing is known if one requires nothing
            alternatives = []
            for child in node.children:
                required = self._required(child, depth + 1)
                if not required:
                    return []
                alternatives.append(self._shared_need(_Need("all", parts=tuple(required))))
            return [self._shared_need(_Need("any", parts=tuple(alternatives)))]
        return []

    def criterion(
        self, criterion: Criterion, facts: Facts, scope: Scope, members: dict[str, bool] | None = None
    ) -> Trail:
        node = self._nodes.get(id(criterion))
        if node is None:
            node = self._compile(criterion)
        return self._judge(node, facts, scope, members if members is not None else _NO_MEMBERS)

    def _judge(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        need = node.need
        if need is not None and not (facts.possible.get(need) or need.holds(facts)):
            return node.impossible  # the same verdict, without judging what cannot hold
        anchors = node.anchors
        if anchors is None:
            return node.judge(node, facts, scope, members)
        # nothing bound: one verdict per patient (and day); else one per binding of the anchors it reads
        if not anchors:
            key: Any = node
        elif len(anchors) == 1:
            key = (node, scope.span(anchors[0]))
        else:
            key = (node, *map(scope.span, anchors))
        found = facts.memo.get(key)
        if found is None:
            found = node.judge(node, facts, scope, members)
            facts.memo[key] = found
        return found

    def _judge_all(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        children = []
        met = True
        for child in node.children:
            trail = self._judge(child, facts, scope, members)
            children.append(trail)
            if not trail.met:
                met = False
                if not self.thorough:
                    break
        return Trail.later(all_words, (node.criterion.label, children), met, (), children)

    def _judge_any(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        children = []
        met = False
        for child in node.children:
            trail = self._judge(child, facts, scope, members)
            children.append(trail)
            if trail.met:
                met = True
                if not self.thorough:
                    break
        return Trail.later(any_words, (node.criterion.label, children), met, (), children)

    def _judge_not(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.child is not None
        child = self._judge(node.child, facts, scope, members)
        return Trail.later(not_words, (node.criterion.label, child), not child.met, (), [child])

    def _judge_population(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        population = node.criterion.population
        assert population is not None
        member = members.get(population, False)
        return Trail.later(population_words, (node.criterion.label, population, member), member)

    def _judge_age(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.age is not None
        return self._age(node.criterion.age, node.criterion.label, facts.ctx, scope)

    def _judge_gender(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        criterion = node.criterion
        assert criterion.gender is not None
        ctx = facts.ctx
        gender = ctx.patient.gender if ctx.patient else None
        met = gender in criterion.gender
        return Trail(
            criterion.label or f"gender in {list(criterion.gender)}",
            met,
            f"gender is {gender or 'not documented'}",
            (Evidence(f"Patient/{ctx.patient_id}", f"gender {gender}"),) if ctx.patient else (),
        )  # judged once per measure: not worth writing later

    def _judge_exists(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.exists is not None
        return self._exists(node.criterion.exists, node.criterion.label, facts, scope, members)

    def _judge_use(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        criterion = node.criterion
        assert criterion.use is not None
        shared = self.ruleset.table.library[criterion.use]
        assert node.child is not None
        trail = self._judge(node.child, facts, scope, members)
        label = criterion.label or shared.label or criterion.use
        # a trail is labelled with its criterion's own label when it has one: compare without writing words
        same = label == shared.label if shared.label is not None else label == trail.label
        if same:
            return trail
        return Trail.later(relabelled, (label, trail), trail.met, trail.evidence, trail.children)

    def _judge_readings(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.readings is not None
        return self._readings(node.criterion.readings, node.criterion.label, facts, scope)

    def _judge_latest_day(self, node: _Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.latest_day is not None
        return self._latest_day(node.criterion.latest_day, node.criterion.label, facts, scope)

    def _age(self, spec: AgeCriterion, label: str | None, ctx: PatientContext, scope: Scope) -> Trail:
        at = spec.at.resolve(scope)
        patient = ctx.patient
        if patient is None or patient.birth_date is None:
            why = "no Patient resource in the input" if patient is None else "Patient has no birthDate"
            return Trail.later(age_words, (spec, label, f"age unknown: {why}"), False)
        if at is None:
            return Trail.later(age_words, (spec, label, f"{spec.at.text} is not known"), False)
        birth = patient.birth_date
        age = age_on(birth, at)
        if spec.equals is not None:
            met = age == spec.equals
        else:
            met = (spec.min is None or age >= spec.min) and (spec.max is None or age <= spec.max)
        return Trail.later(
            age_words,
            (spec, label, None, age, at, birth),
            met,
            (Evidence.later(f"Patient/{ctx.patient_id}", age_note, age, at),),
        )

    # ------------------------------------------------------------------------------------------ exists

    def _matching(
        self, spec: ExistsCriterion, facts: Facts, scope: Scope, members: dict[str, bool] | None = None
    ) -> tuple[list[ResourceRecord], list[tuple[Why, int]], list[Trail]]:
        """Records passing every test of ``spec``; why the others failed (reason, how many: read only in the
        words of a trail); trails of ``then``/``where``."""
        plan = self._plans.get(id(spec))
        if plan is None:
            plan = self._plans[id(spec)] = _ExistsPlan(spec, self.ruleset)
        misses: list[tuple[Why, int]] = []
        pool = facts.pool(spec.resource, plan.codes)
        if not pool:
            return [], misses, []
        # Once per patient (and day), for every window the exists is asked of: when each record applies, and
        # the tests that do not depend on the window (worked out when first needed).
        known = facts.memo.get(plan)
        if known is None:
            spans = facts.spans_of(pool, spec.timing_of) if plan.timing is not None else []
            known = facts.memo[plan] = (spans, [_UNSEEN] * len(pool))
        spans, screen = known
        timing = plan.timing
        window = self._resolve_timing(timing, plan.window_key, scope) if timing is not None else None
        also = []
        for test, relation, key in plan.also:
            also.append((test, relation, self._resolve_timing(relation, key, scope)))
        candidates: list[ResourceRecord] = []
        held: list[Trail] = []
        failed: list[Trail] = []
        for position, record in enumerate(pool):
            why: Why | None = None
            if timing is not None:  # cheapest and most selective test first
                span = spans[position]
                if span is None or window is None or not _timing_ok(timing[0], window, span, spec.precision):
                    why = "outside the time window" if span is not None else "has no date for the time test"
            if why is None:
                why = screen[position]
                if why is _UNSEEN:
                    why = screen[position] = self._filter(record, spec, facts, plan)
            if also and why is None:
                for test, relation, resolved in also:
                    span = facts.span(record, test.timing_of)
                    if (
                        span is None
                        or resolved is None
                        or not _timing_ok(relation[0], resolved, span, test.precision)
                    ):
                        why = partial(describe_not, relation, scope)
                        break
            if why is None and spec.where is not None:
                trail = self.criterion(spec.where, facts, self._bind(facts, scope, spec, record), members)
                (held if trail.met else failed).append(trail)
                if not trail.met:
                    why = partial(does_not_hold, trail)
            if why is not None:
                misses.append((why, 1))
                continue
            candidates.append(record)
        if spec.latest_only and candidates:
            latest = max(candidates, key=lambda r: _latest_key(r, spec))
            misses.append(("not the latest", len(candidates) - 1))
            candidates = [latest]
        if not plan.judges_candidates:
            return candidates, misses, (held if candidates else failed)
        matched: list[ResourceRecord] = []
        for record in candidates:
            why = self._value_ok(record, spec)
            if why is None and spec.then is not None:
                trail = self.criterion(spec.then, facts, self._bind(facts, scope, spec, record), members)
                (held if trail.met else failed).append(trail)
                if not trail.met:
                    why = partial(does_not_hold, trail)
            if why is not None:
                misses.append((why, 1))
                continue
            matched.append(record)
        return matched, misses, (held if matched else failed)

    @staticmethod
    def _bind(facts: Facts, scope: Scope, spec: ExistsCriterion, record: ResourceRecord) -> Scope:
        return scope.bind(spec.as_, facts.span(record, spec.timing_of) or Span(None, None))

    def _exists(
        self, spec: ExistsCriterion, label: str | None, facts: Facts, scope: Scope, members: dict[str, bool]
    ) -> Trail:
        matched, misses, trails = self._matching(spec, facts, scope, members)
        about = (spec, label, scope, matched, misses)  # what the words are written from
        if not matched:
            return Trail.later(exists_words, about, False, (), trails[:1])
        timing_of = spec.timing_of
        evidence = tuple(Evidence.later(r.ref, describe, r, timing_of) for r in matched[:MAX_EVIDENCE])
        met = len(matched) >= max(spec.min_count, 1)
        if met and spec.min_distinct_days > 1:
            met = len(distinct_end_days(matched, timing_of)) >= spec.min_distinct_days
        return Trail.later(exists_words, about, met, evidence, trails[:1])

    def _filter(
        self,
        record: ResourceRecord,
        spec: ExistsCriterion,
        facts: Facts,
        plan: _ExistsPlan,
    ) -> str | None:
        """Why ``record`` fails a non-timing test, or None."""
        reason_codes, diagnosis_codes, discharge_codes = (
            plan.reason_codes,
            plan.diagnosis_codes,
            plan.discharge_codes,
        )
        status = record.status_code
        if isinstance(record, ConditionRecord) and record.verification_status in _CONDITION_NOT_VALID:
            return f"verification status {record.verification_status}"
        not_done = record.not_done
        if spec.not_done != not_done:
            return "documents that it was not done" if not_done else "does not document 'not done'"
        if spec.statuses and status not in spec.statuses:
            return f"status {status or '(none)'}"
        if spec.exclude_statuses and status in spec.exclude_statuses:
            return f"status {status}"
        if spec.categories and record.category_codes.isdisjoint(spec.categories):
            cats = sorted(record.category_codes)
            return f"category {', '.join(cats) if cats else '(none)'} (needs {', '.join(spec.categories)})"
        intent = record.intent if isinstance(record, EventRecord) else None
        if spec.intents and intent not in spec.intents:
            return f"intent {intent or '(none)'}"
        if (
            not spec.not_done
            and spec.exclude_do_not_perform
            and isinstance(record, EventRecord)
            and record.do_not_perform
        ):
            return "marked do-not-perform"
        if spec.value_present and not (isinstance(record, ObservationRecord) and record.has_value):
            return "has no value"
        if reason_codes is not None and record.reasons.isdisjoint(reason_codes):
            return "reason not in the listed reasons"
        if isinstance(record, EncounterRecord):
            if spec.classes and record.class_code not in spec.classes:
                return f"encounter class {record.class_code or '(none)'}"
            if spec.exclude_classes and record.class_code in spec.exclude_classes:
                return f"encounter class {record.class_code}"
            if discharge_codes is not None and record.discharge_codes.isdisjoint(discharge_codes):
                return "discharge disposition not listed"
            if diagnosis_codes is not None and not _has_diagnosis(record, facts.ctx, diagnosis_codes):
                return "no listed diagnosis on the encounter"
        return None

    def _value_ok(self, record: ResourceRecord, spec: ExistsCriterion) -> str | None:
        if not (spec.value_codes or spec.value_valuesets or spec.value_tests):
            return None
        if not isinstance(record, ObservationRecord):
            return "has no value"
        if spec.value_codes or spec.value_valuesets:
            wanted = self.ruleset.resolve_codes(spec.value_codes, spec.value_valuesets)
            if record.value_codes.isdisjoint(wanted):
                shown = ",".join(sorted(c for _, c in record.value_codes)) or record.shown_value
                return f"value {shown} not among the listed answers"
        if spec.value_tests and not any(self._value_test(record, test) for test in spec.value_tests):
            return f"value {record.shown_value} passes none of the value tests"
        return None

    def _value_test(self, record: ObservationRecord, test: ValueTest) -> bool:
        if test.for_codes and record.codes.isdisjoint(self.ruleset.resolve_codes(test.for_codes, ())):
            return False
        if (test.codes or test.valuesets) and not record.value_codes.isdisjoint(
            self.ruleset.resolve_codes(test.codes, test.valuesets)
        ):
            return True
        if test.band is not None:
            number = record.number
            return number is not None and test.band.contains(number)
        return False

    # ------------------------------------------------------------------------------------------ timing

    def _resolve_timing(
        self, timing: tuple[str, Window | DateExpr], key: str, scope: Scope
    ) -> tuple[tuple[date | None, datetime | None], tuple[date | None, datetime | None]] | None:
        """((first day, instant), (last day, instant)) of a time relation's window; ``key``: see
        ``_ExistsPlan``."""
        value = timing[1]
        # many exists of one scope share a window (the period, the encounter): resolved once, by its text
        found = scope.windows.get(key)
        if found is None:
            if isinstance(value, DateExpr):
                point = (value.resolve(scope), value.resolve_instant(scope))
                found = (point, point)
            else:
                low = (value.start.resolve(scope), value.start.resolve_instant(scope))
                high = (value.end.resolve(scope), value.end.resolve_instant(scope))
                found = (low, high)
            scope.windows[key] = found
        return found

    # ------------------------------------------------------------------------------------------ readings

    def _window_days(self, window: Window, scope: Scope) -> tuple[date, date] | None:
        low, high = window.resolve(scope)
        if low is None or high is None:
            return None
        return low, high

    def _readings(self, spec: ReadingsCriterion, label: str | None, facts: Facts, scope: Scope) -> Trail:
        days = self._window_days(spec.within, scope)
        if days is None:
            return Trail.later(readings_words, (spec, label, None, [], []), False)
        between = facts.readings.between(spec.measurement, days[0], days[1])
        band = spec.band
        found = [r for r in between if r.value is not None and (band is None or band.contains(r.value))]
        evidence = tuple(Evidence.later(r.observation, r.describe) for r in found[:MAX_EVIDENCE])
        about = (spec, label, days, found, between)
        return Trail.later(readings_words, about, len(found) >= spec.min_count, evidence)

    def _latest_day(self, spec: LatestDayCriterion, label: str | None, facts: Facts, scope: Scope) -> Trail:
        # Many criteria read the same readings and differ only in the test (CMS22: normal, elevated, ...):
        # which readings they read is chosen once per window (per binding of the anchors the window reads).
        selection, anchors = self._selection(spec)
        if not anchors:
            key: Any = selection
        elif len(anchors) == 1:
            key = (selection, scope.span(anchors[0]))
        else:
            key = (selection, *map(scope.span, anchors))
        chosen = facts.memo.get(key)
        if chosen is None:
            days = self._window_days(spec.within, scope)
            choice = None
            if days is not None:
                instants = None
                if spec.precision == "instant":
                    instants = (
                        spec.within.start.resolve_instant(scope),
                        spec.within.end.resolve_instant(scope),
                    )
                choice = self._latest_choice(spec, facts, days, instants)
            chosen = facts.memo[key] = (days, choice)
        days, choice = chosen
        if days is None or choice is None:
            return Trail.later(unknown_window_words, (spec, label), spec.if_none)
        if spec.pick == "last":
            return self._last_reading(spec, label, choice, days)
        if choice.day is None:
            about = (spec, label, *days)
            return Trail.later(no_common_day_words, about, spec.if_none, tuple(choice.skipped))
        evidence: list[Evidence] = []
        picks: list[tuple[str, Reading | None, bool]] = []
        met = True
        for name, valueless, picked, shown in choice.picked:
            band = spec.test.get(name)
            assert shown is not None
            evidence.append(shown)
            if (
                valueless is not None
            ):  # CQL sorts nulls first: a result without a value on the day is the 'lowest'
                picks.append((name, None, False))
                met = met and spec.if_no_value
                continue
            assert picked is not None and picked.value is not None
            if band is None:
                continue
            ok = band.contains(picked.value)
            picks.append((name, picked, ok))
            met = met and ok
        return Trail.later(
            lowest_words,
            (spec, label, choice.day, picks),
            met,
            tuple(evidence + choice.skipped) if choice.skipped else tuple(evidence),
        )

    def _selection(self, spec: LatestDayCriterion) -> tuple[object, tuple[str, ...]]:
        """(One object per way of choosing readings, the anchors its window reads besides the period)."""
        found = self._selections.get(id(spec))
        if found is None:
            within = spec.within
            how: tuple[Any, ...] = (spec.pick, spec.measurements, spec.count_valueless)
            how += (spec.exclude_encounter_classes, spec.precision, within.start.text, within.end.text)
            selection = self._selections_by_how.setdefault(how, object())
            anchors = tuple(sorted({within.start.anchor, within.end.anchor} - {"period"}))
            found = self._selections[id(spec)] = (selection, anchors)
            self._keep.append(spec)  # ids stay unique while the evaluator lives
        return found

    def _latest_choice(
        self,
        spec: LatestDayCriterion,
        facts: Facts,
        days: tuple[date, date],
        instants: tuple[datetime | None, datetime | None] | None,
    ) -> _Choice:
        """The readings a latest-day criterion tests, whatever its test: see ``_Choice``."""
        start, end = days
        low_i, high_i = instants if instants is not None else (None, None)
        excluded_classes = set(spec.exclude_encounter_classes)
        skipped: list[Evidence] = []
        usable: dict[str, list[Reading]] = {}
        for name in spec.measurements:
            for reading in facts.readings.between(name, start, end):
                if low_i is not None and high_i is not None:
                    at = reading.end_instant or reading.instant
                    if at is not None and not low_i <= at <= high_i:
                        continue
                if reading.value is None and not spec.count_valueless:
                    continue
                if excluded_classes and reading.encounter_ref:
                    encounter = facts.ctx.encounter_by_ref.get(reading.encounter_ref)
                    if encounter is not None and encounter.class_code in excluded_classes:
                        skipped.append(
                            Evidence(
                                reading.observation,
                                f"not counted: taken in a {encounter.class_code} encounter",
                            )
                        )
                        continue
                usable.setdefault(name, []).append(reading)
        choice = _Choice(skipped)
        if spec.pick == "last":
            every = [r for items in usable.values() for r in items]
            if not every:
                return choice
            last = max(every, key=_time_key)
            choice.last = last
            for name in spec.measurements:
                same = [r for r in usable.get(name, []) if r.observation == last.observation]
                if not same:  # separate systolic and diastolic Observations taken at the same moment
                    same = [r for r in usable.get(name, []) if _time_key(r)[:2] == _time_key(last)[:2]]
                picked = same[0] if same else None
                choice.picked.append((name, None, picked, _reading_evidence(picked)))
            return choice
        common: set[date] | None = None
        for name in spec.measurements:
            found = {r.day for r in usable.get(name, [])}
            common = found if common is None else common & found
        if not common:
            return choice
        latest = choice.day = max(common)
        for name in spec.measurements:
            same_day = [r for r in usable[name] if r.day == latest]
            valueless = [r for r in same_day if r.value is None]
            if valueless:
                choice.picked.append((name, valueless[0], None, _reading_evidence(valueless[0])))
            else:
                picked = min(same_day, key=_lowest_key)
                choice.picked.append((name, None, picked, _reading_evidence(picked)))
        return choice

    def _last_reading(
        self, spec: LatestDayCriterion, label: str | None, choice: _Choice, days: tuple[date, date]
    ) -> Trail:
        last = choice.last
        if last is None:
            return Trail.later(no_reading_words, (spec, label, days), spec.if_none, tuple(choice.skipped))
        evidence: list[Evidence] = []
        picks: list[tuple[str, Reading | None, bool]] = []
        met = True
        for name, _, picked, shown in choice.picked:
            band = spec.test.get(name)
            if picked is None or picked.value is None:
                picks.append((name, None, False))
                met = met and (band is None and spec.if_no_value)
                continue
            assert shown is not None
            evidence.append(shown)
            if band is None:
                continue
            ok = band.contains(picked.value)
            picks.append((name, picked, ok))
            met = met and ok
        all_shown = tuple(evidence + choice.skipped) if choice.skipped else tuple(evidence)
        return Trail.later(last_words, (spec, label, last, picks), met, all_shown)


class _ExistsPlan:
    """What an exists criterion tests, prepared once per evaluator: its codes resolved, its time relations."""

    __slots__ = (
        "also",
        "codes",
        "diagnosis_codes",
        "discharge_codes",
        "judges_candidates",
        "reason_codes",
        "spec",
        "timing",
        "window_key",
    )

    def __init__(self, spec: ExistsCriterion, ruleset: RuleSet) -> None:
        resolve = ruleset.resolve_codes
        self.spec = spec  # the plan is found by the spec's id: keep the spec alive with it
        self.codes = resolve(spec.codes, spec.valuesets)
        self.reason_codes = (
            resolve(spec.reason_codes, spec.reason_valuesets)
            if spec.reason_codes or spec.reason_valuesets
            else None
        )
        self.diagnosis_codes = resolve((), spec.diagnosis_valuesets) if spec.diagnosis_valuesets else None
        self.discharge_codes = resolve(spec.discharge_codes, ()) if spec.discharge_codes else None
        self.timing = spec.timing
        self.window_key = _window_key(self.timing)
        self.also = [(test, test.timing, _window_key(test.timing)) for test in spec.also]
        self.judges_candidates = bool(
            spec.value_codes or spec.value_valuesets or spec.value_tests or spec.then
        )
        """Whether candidates have a value test or a ``then`` to pass (else every candidate matches)."""


def _window_key(timing: tuple[str, Window | DateExpr] | None) -> str:
    """The text a time relation's window is resolved under in a scope (see ``Scope.windows``)."""
    if timing is None:
        return ""
    value = timing[1]
    return value.text if isinstance(value, DateExpr) else f"{value.start.text}..{value.end.text}"


class _Choice:
    """The readings a latest-day criterion tests, chosen once for every criterion that reads the same
    measurements in the same window: ``pick: lowest``: the latest day with every measurement (``day``) and,
    per measurement, a reading without a value on that day or else the lowest one; ``pick: last``: the last
    reading (``last``) and, per measurement, the reading of that moment (or None). ``skipped``: readings left
    out because of their encounter's class (evidence too)."""

    __slots__ = ("day", "last", "picked", "skipped")

    def __init__(self, skipped: list[Evidence]) -> None:
        self.skipped = skipped
        self.day: date | None = None
        self.last: Reading | None = None
        self.picked: list[tuple[str, Reading | None, Reading | None, Evidence | None]] = []
        """(measurement, a reading without a value, the picked reading, the evidence of the one of them that
        is given): the evidence is shared by every criterion that tests the choice."""


# ----------------------------------------------------------------------------------------------- helpers


def _reads_populations(
    criterion: Criterion, library: dict[str, Criterion], seen: frozenset[str] = frozenset()
) -> bool:
    if criterion.population is not None:
        return True
    children = [*(criterion.all or ()), *(criterion.any or ())]
    if criterion.not_ is not None:
        children.append(criterion.not_)
    if criterion.exists is not None:
        children += [c for c in (criterion.exists.where, criterion.exists.then) if c is not None]
    if criterion.use is not None and criterion.use in library and criterion.use not in seen:
        children.append(library[criterion.use])
        seen = seen | {criterion.use}
    return any(_reads_populations(child, library, seen) for child in children)


def _add_references(trail: Trail, references: set[str]) -> None:
    """Add the references (Type/id) of every evidence of ``trail`` and its sub-trails."""
    pending = [trail]
    while pending:
        current = pending.pop()
        for evidence in current.evidence:
            if "/" in evidence.ref:
                references.add(evidence.ref)
        pending.extend(current.children)


def _fixed_members(group: GroupResult) -> dict[str, PopulationResult]:
    return {p.code: p for p in group.populations if p.code in ("initial-population", "denominator")}


def _reading_evidence(reading: Reading | None) -> Evidence | None:
    return None if reading is None else Evidence.later(reading.observation, reading.describe)


def _time_key(reading: Reading) -> tuple[date, str, str]:
    return (reading.day, reading.instant_text, reading.observation)


def _lowest_key(reading: Reading) -> tuple[float | None, str, str]:
    return (reading.value, reading.instant_text, reading.observation)


def _timing_ok(
    relation: str,
    window: tuple[tuple[date | None, datetime | None], tuple[date | None, datetime | None]],
    span: Span,
    precision: str,
) -> bool:
    (low, low_i), (high, high_i) = window
    if precision == "instant" and low_i is not None and high_i is not None:
        start_i, end_i = span.start_instant, span.end_instant
        if relation == "during" and start_i is not None and end_i is not None:
            return low_i <= start_i and end_i <= high_i
        if relation == "starts_during" and start_i is not None:
            return low_i <= start_i <= high_i
        if relation == "ends_during" and end_i is not None:
            return low_i <= end_i <= high_i
        if relation == "starts_by" and start_i is not None:
            return start_i <= high_i
        if relation == "ends_by" and end_i is not None:
            return end_i <= high_i
    start, end = span.start, span.end
    if relation in ("starts_by", "ends_by"):
        if high is None:
            return False
        if relation == "starts_by":
            return start is not None and start <= high
        return end is not None and end <= high
    if low is None or high is None:
        return False
    if relation == "during":
        return start is not None and end is not None and low <= start and end <= high
    if relation == "overlaps":
        return (start is None or start <= high) and (end is None or end >= low)
    if relation == "starts_during":
        return start is not None and low <= start <= high
    return end is not None and low <= end <= high  # ends_during


def _latest_key(record: ResourceRecord, spec: ExistsCriterion) -> tuple[str, str, str]:
    applies = span(record, spec.timing_of)
    if applies is None:
        return ("", "", record.ref)
    if spec.latest_by == "start":
        day, instant = applies.start, applies.start_instant
    else:
        day, instant = applies.end, applies.end_instant
    return (day.isoformat() if day else "", instant.isoformat() if instant else "", record.ref)


def _has_diagnosis(record: EncounterRecord, ctx: PatientContext, codes: frozenset[Code]) -> bool:
    for ref in record.diagnoses:
        condition = ctx.condition_by_ref.get(ref)
        if condition is not None and not condition.codes.isdisjoint(codes):
            return True
    return False
