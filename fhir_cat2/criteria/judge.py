"""Judging compiled criteria (``plan.py``) against one patient's facts (``facts.py``): a trail per criterion,
whether it holds, with the evidence that decided it; its words are written later (``words.py``).

Pure: facts and a scope (the period, bound encounters and resources) in, trails out. Judged criteria are
memoised on the facts, by criterion and the anchors it reads.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Any

from ..contexts import PatientContext
from ..findings import Evidence, Trail
from ..rules.criteria_schema import (
    AgeCriterion,
    Criterion,
    CumulativeDays,
    DailyDose,
    ExistsCriterion,
    LatestDayCriterion,
    ReadingsCriterion,
    ValueTest,
    Window,
)
from ..rules.facts import Reading, Readings
from ..rules.loader import RuleSet
from ..rules.timing import DateExpr, Scope, Span
from ..sources.records import (
    Code,
    ConditionRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    ResourceRecord,
)
from .components import components_why
from .cumulative import cumulative_days
from .days import judge_distinct_days
from .facts import Facts
from .links import links_of, part_of_target, part_of_why
from .orders import average_daily_dose, more_than_one_order, total_days_supplied
from .plan import ExistsPlan, Node, Plans
from .scores import score_change
from .spans import SEVERAL, distinct_end_days, every_span, span
from .words import (
    Why,
    age_note,
    age_words,
    all_words,
    any_words,
    deceased_words,
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

MAX_EVIDENCE = 50
_UNSEEN: Any = object()
_CONDITION_NOT_VALID = frozenset({"refuted", "entered-in-error"})
_POINT_RELATIONS = frozenset(
    {"starts_by", "ends_by", "starts_before", "ends_before", "starts_after", "ends_after"}
)
_NO_MEMBERS: dict[str, bool] = {}
"""Population memberships when none are given (read only)."""


class Criteria:
    """The criteria of one rules table, judged for patients: compiled once (``plans``), then judged for
    every patient. Code rules and measures both judge their criteria here."""

    def __init__(
        self, ruleset: RuleSet, *, thorough: bool = True, deviations: frozenset[str] = frozenset()
    ) -> None:
        self.ruleset = ruleset
        self.deviations = deviations
        """Named deviations from the published logic that are on (``fhir_cat2.deviations``); none by
        default."""
        self.thorough = thorough
        """True: judge every sub-criterion (explain shows them all). False: stop an all-of at its first
        failure and an any-of at its first success (replay; the outcome is the same, the trail shorter)."""
        judges = {
            "all": self._judge_all,
            "any": self._judge_any,
            "not": self._judge_not,
            "population": self._judge_population,
            "age": self._judge_age,
            "deceased": self._judge_deceased,
            "gender": self._judge_gender,
            "exists": self._judge_exists,
            "use": self._judge_use,
            "readings": self._judge_readings,
            "latest_day": self._judge_latest_day,
            "distinct_days": self._judge_distinct_days,
            "score_change": self._judge_score_change,
        }
        self.plans = Plans(ruleset, judges, thorough=thorough, deviations=deviations)
        self._nodes = self.plans.nodes
        self._exists_plans = self.plans.exists_plans
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

    def possible(self, criterion: Criterion, facts: Facts) -> bool:
        """False when ``criterion`` cannot hold on this record (see ``Plans.possible``)."""
        return self.plans.possible(criterion, facts)

    def criterion(
        self, criterion: Criterion, facts: Facts, scope: Scope, members: dict[str, bool] | None = None
    ) -> Trail:
        node = self._nodes.get(id(criterion))
        if node is None:
            node = self.plans.compile(criterion)
        return self._judge(node, facts, scope, members if members is not None else _NO_MEMBERS)

    def _judge(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
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

    def _judge_all(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
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

    def _judge_any(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
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

    def _judge_not(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.child is not None
        child = self._judge(node.child, facts, scope, members)
        return Trail.later(not_words, (node.criterion.label, child), not child.met, (), [child])

    def _judge_population(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        population = node.criterion.population
        assert population is not None
        member = members.get(population, False)
        return Trail.later(population_words, (node.criterion.label, population, member), member)

    def _judge_age(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.age is not None
        return self._age(node.criterion.age, node.criterion.label, facts.ctx, scope)

    def _judge_gender(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
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

    def _judge_exists(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.exists is not None
        return self._exists(node.criterion.exists, node.criterion.label, facts, scope, members)

    def _judge_use(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
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

    def _judge_readings(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.readings is not None
        return self._readings(node.criterion.readings, node.criterion.label, facts, scope)

    def _judge_latest_day(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.latest_day is not None
        return self._latest_day(node.criterion.latest_day, node.criterion.label, facts, scope)

    def _judge_distinct_days(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        return judge_distinct_days(self, node, facts, scope, members)

    def _judge_score_change(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        assert node.criterion.score_change is not None
        return score_change(self, node.criterion.score_change, node.criterion.label, facts, scope, members)

    def _judge_deceased(self, node: Node, facts: Facts, scope: Scope, members: dict[str, bool]) -> Trail:
        spec = node.criterion.deceased
        assert spec is not None
        by = spec.by.resolve(scope)
        patient = facts.ctx.patient
        died = patient.deceased_day if patient is not None else None
        met = died is not None and by is not None and died <= by
        evidence = (
            (Evidence(f"Patient/{facts.ctx.patient_id}", f"died {died.isoformat()}"),) if met and died else ()
        )
        return Trail.later(deceased_words, (spec, node.criterion.label, died, by), met, evidence)

    def _age(self, spec: AgeCriterion, label: str | None, ctx: PatientContext, scope: Scope) -> Trail:
        at = spec.at.resolve(scope)
        patient = ctx.patient
        if patient is None or patient.birth_date is None:
            why = "no Patient resource in the input" if patient is None else "Patient has no birthDate"
            return Trail.later(age_words, (spec, label, f"age unknown: {why}"), False)
        if at is None:
            return Trail.later(age_words, (spec, label, f"{spec.at.text} is not known"), False)
        birth = patient.birth_date
        age = age_on(birth, at) if spec.unit == "years" else months_on(birth, at)
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

    def matching(
        self, spec: ExistsCriterion, facts: Facts, scope: Scope, members: dict[str, bool] | None = None
    ) -> tuple[list[ResourceRecord], list[tuple[Why, int]], list[Trail]]:
        """Records passing every test of ``spec``; why the others failed (reason, how many: read only in the
        words of a trail); the trails to show: the first of ``then``, then the first of ``where``."""
        plan = self._exists_plans.get(id(spec))
        if plan is None:
            plan = self.plans.exists_plan(spec)
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
        itself = scope.span(spec.is_).ref if spec.is_ is not None else None
        linked = links_of(spec, scope)
        part_of = spec.part_of
        link = part_of_target(part_of, scope) if part_of is not None else None
        several = spec.timing_of in SEVERAL
        for position, record in enumerate(pool):
            if spec.is_ is not None and record.ref != itself:
                continue  # not the bound resource: not a candidate at all
            if linked is not None and not linked.admits(record):
                continue  # the bound resource itself, or not based on it: not a candidate at all
            why: Why | None = None
            if part_of is not None:
                why = part_of_why(record, part_of, link)
            if timing is not None and why is None:  # cheapest and most selective test first
                span = spans[position]
                if several:
                    why = _several_ok(timing[0], window, record, spec.timing_of, spec.precision)
                elif span is None:
                    why = "has no date for the time test"
                elif window is None or not _timing_ok(timing[0], window, span, spec.precision):
                    why = "outside the time window"
            if why is None:
                why = screen[position]
                if why is _UNSEEN:
                    why = screen[position] = self._filter(record, spec, facts, plan)
            if also and why is None:
                for test, relation, resolved in also:
                    if test.timing_of in SEVERAL:
                        if _several_ok(relation[0], resolved, record, test.timing_of, test.precision):
                            why = partial(describe_not, relation, scope)
                            break
                        continue
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
            if why is None and spec.values_first:  # the value tests pick candidates before one is chosen
                why = self._value_ok(record, spec)
            if why is not None:
                misses.append((why, 1))
                continue
            candidates.append(record)
        if spec.more_than_one_order is not None and candidates:
            low, high = spec.more_than_one_order.resolve(scope)
            if low is None or high is None:
                misses.append(("more than one order: the window is not known", len(candidates)))
                candidates = []
            else:
                candidates, single = more_than_one_order(candidates, low, high)
                if single:
                    misses.append(
                        (f"not more than one order in {low.isoformat()}..{high.isoformat()}", len(single))
                    )
        if spec.latest_only and candidates:
            latest = max(candidates, key=lambda r: _latest_key(r, spec))
            misses.append(("not the latest", len(candidates) - 1))
            candidates = [latest]
        elif spec.earliest_only and candidates:
            earliest = min(candidates, key=lambda r: _latest_key(r, spec))
            misses.append(("not the earliest", len(candidates) - 1))
            candidates = [earliest]
        if not plan.judges_candidates:
            return candidates, misses, (held if candidates else failed)
        matched: list[ResourceRecord] = []
        then_held: list[Trail] = []
        then_failed: list[Trail] = []
        for record in candidates:
            why = None if spec.values_first else self._value_ok(record, spec)
            if why is None and spec.components is not None:
                why = components_why(record, spec.components)
            if why is None and spec.daily_dose is not None:
                why = _daily_dose_ok(record, spec.daily_dose, plan)
            if why is None and spec.then is not None:
                trail = self.criterion(spec.then, facts, self._bind(facts, scope, spec, record), members)
                (then_held if trail.met else then_failed).append(trail)
                if not trail.met:
                    why = partial(does_not_hold, trail)
            if why is not None:
                misses.append((why, 1))
                continue
            matched.append(record)
        # ``then`` is judged last, on what passed every other test: its first trail says most, and is shown
        # first; the first ``where`` trail follows it
        if matched:
            return matched, misses, then_held[:1] + held[:1]
        return matched, misses, then_failed[:1] + failed[:1]

    @staticmethod
    def _bind(facts: Facts, scope: Scope, spec: ExistsCriterion, record: ResourceRecord) -> Scope:
        return scope.bind(spec.as_, facts.span(record, spec.timing_of) or Span(None, None, ref=record.ref))

    def _exists(
        self, spec: ExistsCriterion, label: str | None, facts: Facts, scope: Scope, members: dict[str, bool]
    ) -> Trail:
        matched, misses, trails = self.matching(spec, facts, scope, members)
        about: tuple[Any, ...] = (spec, label, scope, matched, misses)  # what the words are written from
        if not matched:
            return Trail.later(exists_words, about, False, (), trails[:1])
        timing_of = spec.timing_of
        evidence = tuple(Evidence.later(r.ref, describe, r, timing_of) for r in matched[:MAX_EVIDENCE])
        met = len(matched) >= max(spec.min_count, 1)
        if met and spec.min_distinct_days > 1:
            met = len(distinct_end_days(matched, timing_of)) >= spec.min_distinct_days
        total = covered = None
        if spec.total_days_supplied is not None:
            total = total_days_supplied(matched)
            met = met and total is not None and spec.total_days_supplied.contains(total)
        if spec.cumulative_days is not None:
            covered = self._cumulative_days(spec, spec.cumulative_days, matched, scope)
            met = met and covered is not None and spec.cumulative_days.band.contains(covered)
        # with both ``where`` and ``then``, what each found: the ``then`` trail, then the ``where`` one
        shown = trails if spec.where is not None and spec.then is not None else trails[:1]
        return Trail.later(exists_words, (*about, total, covered), met, evidence, shown)

    def _cumulative_days(
        self, spec: ExistsCriterion, test: CumulativeDays, matched: list[ResourceRecord], scope: Scope
    ) -> int | None:
        low, high = test.within.resolve(scope)
        if low is None or high is None:
            return None
        resolve = self.ruleset.resolve_codes
        code_sets = [resolve((code,), ()) for code in spec.codes]
        code_sets += [resolve((), (valueset,)) for valueset in spec.valuesets]
        return cumulative_days(matched, low, high, test.rollout, code_sets)

    def _filter(
        self,
        record: ResourceRecord,
        spec: ExistsCriterion,
        facts: Facts,
        plan: ExistsPlan,
    ) -> str | None:
        """Why ``record`` fails a non-timing test, or None."""
        reason_codes, diagnosis_codes, discharge_codes = (
            plan.reason_codes,
            plan.diagnosis_codes,
            plan.discharge_codes,
        )
        status = record.status_code
        if (
            isinstance(record, ConditionRecord)
            and record.verification_status in _CONDITION_NOT_VALID
            and "ignore-refuted-conditions" in self.deviations
        ):
            return f"verification status {record.verification_status} (deviation ignore-refuted-conditions)"
        if spec.verification_statuses:
            shown = record.verification_status if isinstance(record, (ConditionRecord, EventRecord)) else None
            if shown not in spec.verification_statuses:
                return (
                    f"verification status {shown or '(none)'} (needs {', '.join(spec.verification_statuses)})"
                )
        if isinstance(record, ConditionRecord):
            if (
                spec.exclude_verification_statuses
                and record.verification_status in spec.exclude_verification_statuses
            ):
                return f"verification status {record.verification_status}"
            if plan.body_sites is not None and record.body_sites.isdisjoint(plan.body_sites):
                return "body site not listed"
        not_done = record.not_done
        if spec.not_done != not_done:
            return "documents that it was not done" if not_done else "does not document 'not done'"
        if spec.statuses and status not in spec.statuses:
            return f"status {status or '(none)'}"
        if spec.exclude_statuses and status in spec.exclude_statuses:
            return f"status {status}"
        if plan.severity_codes is not None and (
            not isinstance(record, ConditionRecord) or record.severity.isdisjoint(plan.severity_codes)
        ):
            return "severity not in the listed severities"
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
            if spec.principal_diagnosis_valuesets and not _has_principal_diagnosis(
                record, facts.ctx, self.ruleset.resolve_codes((), spec.principal_diagnosis_valuesets)
            ):
                return "principal diagnosis not listed"
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
            if test.units:
                measured = record.quantity
                if measured is None or measured.comparator or measured.unit not in test.units:
                    return False
                return test.band.contains(measured.value)
            number = record.number
            return number is not None and test.band.contains(number)
        return False

    # ------------------------------------------------------------------------------------------ timing

    def _resolve_timing(
        self, timing: tuple[str, Window | DateExpr], key: str, scope: Scope
    ) -> tuple[tuple[date | None, datetime | None], tuple[date | None, datetime | None]] | None:
        """((first day, instant), (last day, instant)) of a time relation's window; ``key``: see
        ``ExistsPlan``."""
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
        selection, anchors = self.plans.selection(spec)
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
            for reading in facts.readings.between(name, start, end, spec.any_status):
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


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def months_on(birth: date, day: date) -> int:
    """Whole calendar months from ``birth`` to ``day`` (the CQL's AgeInMonthsAt)."""
    return (day.year - birth.year) * 12 + day.month - birth.month - (day.day < birth.day)


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
        if relation == "starts_before" and start_i is not None:
            return start_i < high_i
        if relation == "ends_before" and end_i is not None:
            return end_i < high_i
        if relation == "starts_after" and start_i is not None:
            return start_i > high_i
        if relation == "ends_after" and end_i is not None:
            return end_i > high_i
        # an open end is ongoing; a side known only to the day is compared by days below
        if (
            relation == "overlaps"
            and (start_i is not None or span.start is None)
            and (end_i is not None or span.end is None)
        ):
            return (start_i is None or start_i <= high_i) and (end_i is None or end_i >= low_i)
    start, end = span.start, span.end
    if relation in _POINT_RELATIONS:
        if high is None:
            return False
        if relation == "starts_by":
            return start is not None and start <= high
        if relation == "ends_by":
            return end is not None and end <= high
        if relation == "starts_before":
            return start is not None and start < high
        if relation == "starts_after":
            return start is not None and start > high
        if relation == "ends_after":
            return end is not None and end > high
        return end is not None and end < high  # ends_before
    if low is None or high is None:
        return False
    if relation == "during":
        return start is not None and end is not None and low <= start and end <= high
    if relation == "overlaps":
        return (start is None or start <= high) and (end is None or end >= low)
    if relation == "overlaps_after":  # an open end (an ongoing Condition) ends after any window
        return (start is None or start <= high) and (end is None or end > high)
    if relation == "starts_during":
        return start is not None and low <= start <= high
    return end is not None and low <= end <= high  # ends_during


def _several_ok(
    relation: str,
    window: tuple[tuple[date | None, datetime | None], tuple[date | None, datetime | None]] | None,
    record: ResourceRecord,
    timing_of: str,
    precision: str,
) -> str | None:
    """Why none of a record's several times (``SEVERAL``) satisfies the relation, or None when one does."""
    every = every_span(record, timing_of)
    if not every:
        return "has no date for the time test"
    if window is None or not any(_timing_ok(relation, window, one, precision) for one in every):
        return "outside the time window"
    return None


def _latest_key(record: ResourceRecord, spec: ExistsCriterion) -> tuple[str, str, str]:
    applies = span(record, spec.timing_of)
    if applies is None:
        return ("", "", record.ref)
    if spec.latest_by == "start":
        day, instant = applies.start, applies.start_instant
    else:
        day, instant = applies.end, applies.end_instant
    return (day.isoformat() if day else "", instant.isoformat() if instant else "", record.ref)


def _daily_dose_ok(record: ResourceRecord, test: DailyDose, plan: ExistsPlan) -> str | None:
    dose = average_daily_dose(record, plan.strengths)
    if dose is None:
        return "average daily dose unknown"
    if not test.band.contains(dose):
        return f"average daily dose {dose:g} mg/d, not {test.band.describe()}"
    return None


def _has_principal_diagnosis(record: EncounterRecord, ctx: PatientContext, codes: frozenset[Code]) -> bool:
    principal = record.principal_diagnosis
    condition = ctx.condition_by_ref.get(principal) if principal is not None else None
    return condition is not None and not condition.codes.isdisjoint(codes)


def _has_diagnosis(record: EncounterRecord, ctx: PatientContext, codes: frozenset[Code]) -> bool:
    for ref in record.diagnoses:
        condition = ctx.condition_by_ref.get(ref)
        if condition is not None and not condition.codes.isdisjoint(codes):
            return True
    return False
