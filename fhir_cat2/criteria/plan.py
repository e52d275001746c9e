"""Compiling the criteria of a rules table into plans, once per run, before any patient is judged.

A criterion becomes a ``Node``: the judge of its kind (given by the judging side, see ``judge.py``), its
compiled sub-criteria, what it needs in a record to have any chance of holding (``Need``: a patient lacking
it is not judged at all) and the anchors that key its memo. An exists criterion also gets an ``ExistsPlan``
(its codes resolved, its time relations), and a latest-day criterion the way it chooses readings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from ..findings import Trail
from ..rules.base import parse_code_ref
from ..rules.criteria_schema import Criterion, ExistsCriterion, LatestDayCriterion, Strength, Window
from ..rules.loader import RuleSet, free_anchors, pooled_exists, score_change_exists
from ..rules.timing import DateExpr, Scope
from ..sources.records import Code

if TYPE_CHECKING:
    from .facts import Facts

Judge: TypeAlias = "Callable[[Node, Facts, Scope, dict[str, bool]], Trail]"
"""How a node of one kind is judged: (node, facts, scope, population memberships) -> trail."""
KINDS = (
    "all",
    "any",
    "not",
    "population",
    "age",
    "gender",
    "deceased",
    "exists",
    "use",
    "readings",
    "latest_day",
    "distinct_days",
    "score_change",
)
"""The kinds of criterion, each with its judge."""


class Need:
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
        parts: tuple[Need, ...] = (),
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


class Node:
    """A criterion prepared for judging (once per run): the judge of its kind, its prepared
    sub-criteria, what it needs in the record (None: not cut short), and the anchors that key its memo
    (None: not memoised, because it is cheap or reads population memberships)."""

    __slots__ = ("anchors", "child", "children", "criterion", "impossible", "judge", "need", "required")

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion
        self.judge: Judge
        self.children: tuple[Node, ...] = ()
        self.child: Node | None = None
        self.need: Need | None = None
        self.anchors: tuple[str, ...] | None = None
        self.impossible: Trail
        self.required: Need | None = None
        """Resources it requires (see ``Plans.possible``), once asked."""


class Plans:
    """The compiled criteria of one rules table: nodes by criterion, needs, exists plans and readings
    selections, each made once (found by the id of the rules-table object it was made from)."""

    def __init__(
        self,
        ruleset: RuleSet,
        judges: Mapping[str, Judge],
        *,
        thorough: bool = True,
        deviations: frozenset[str] = frozenset(),
    ) -> None:
        missing = set(KINDS) - set(judges)
        assert not missing, f"no judge for {sorted(missing)}"
        self.ruleset = ruleset
        self.deviations = deviations
        """Named deviations from the published logic that are on (``fhir_cat2.deviations``): the codes
        they add to exists criteria count."""
        self.judges = judges
        self.thorough = thorough
        """True: no criterion is cut short by its needs (explain judges every criterion, even what cannot
        hold)."""
        self.nodes: dict[int, Node] = {}
        self.exists_plans: dict[int, ExistsPlan] = {}
        self._selections: dict[int, tuple[object, tuple[str, ...]]] = {}
        self._selections_by_how: dict[tuple[Any, ...], object] = {}
        self._needs: dict[tuple[Any, ...], Need] = {}
        self._keep: list[Any] = []

    def node(self, criterion: Criterion) -> Node:
        node = self.nodes.get(id(criterion))
        return node if node is not None else self.compile(criterion)

    def compile(self, criterion: Criterion) -> Node:
        """Prepare ``criterion`` (and its sub-criteria) for judging: once per criterion and run."""
        library = self.ruleset.table.library
        node = Node(criterion)
        self.nodes[id(criterion)] = (
            node  # before the sub-criteria, so that a criterion met again is this node
        )
        self._keep.append(criterion)  # ids stay unique while the plans live
        if criterion.all is not None:
            node.judge = self.judges["all"]
            node.children = tuple(self.node(child) for child in criterion.all)
        elif criterion.any is not None:
            node.judge = self.judges["any"]
            node.children = tuple(self.node(child) for child in criterion.any)
        elif criterion.not_ is not None:
            node.judge = self.judges["not"]
            node.child = self.node(criterion.not_)
        elif criterion.population is not None:
            node.judge = self.judges["population"]
        elif criterion.age is not None:
            node.judge = self.judges["age"]
        elif criterion.gender is not None:
            node.judge = self.judges["gender"]
        elif criterion.deceased is not None:
            node.judge = self.judges["deceased"]
        elif criterion.exists is not None:
            node.judge = self.judges["exists"]
        elif criterion.use is not None:
            node.judge = self.judges["use"]
            node.child = self.node(library[criterion.use]) if criterion.use in library else None
        elif criterion.readings is not None:
            node.judge = self.judges["readings"]
        elif criterion.distinct_days is not None:
            node.judge = self.judges["distinct_days"]
            node.child = self.node(criterion.distinct_days.of)
        elif criterion.score_change is not None:
            node.judge = self.judges["score_change"]
        else:
            node.judge = self.judges["latest_day"]
        if not self.thorough:  # explain judges every criterion, even what cannot hold
            node.need = self._need(criterion, node)
        # every kind but the cheap all/any/not (whose sub-criteria are memoised) and population memberships
        memoised = criterion.all is None and criterion.any is None and criterion.not_ is None
        if memoised and not reads_populations(criterion, library):
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
            self.nodes[id(criterion)] = shared
            return shared
        return node

    def _need(self, criterion: Criterion, node: Node) -> Need | None:
        """The static requirement of ``criterion``; None when it cannot be told cheaply."""
        if criterion.exists is not None:
            spec = criterion.exists
            codes = self.codes_of(spec)
            if codes:
                return self._shared_need(Need("exists", resource=spec.resource, codes=codes))
        elif criterion.use is not None:
            return node.child.need if node.child is not None else None
        elif criterion.distinct_days is not None:
            # some pooled exists must match: each needs its resource with one of its codes
            pooled = pooled_exists(criterion.distinct_days.of, self.ruleset.table.library) or []
            pooled_needs: list[Need] = []
            for spec in pooled:
                codes = self.codes_of(spec)
                if not codes:
                    return None
                pooled_needs.append(self._shared_need(Need("exists", resource=spec.resource, codes=codes)))
            return self._shared_need(Need("any", parts=tuple(pooled_needs))) if pooled_needs else None
        elif criterion.score_change is not None:  # no baseline assessment, no change
            baseline = criterion.score_change.baseline
            codes = self.codes_of(baseline)
            if codes:
                return self._shared_need(Need("exists", resource=baseline.resource, codes=codes))
        elif criterion.latest_day is not None and not (
            criterion.latest_day.if_none or criterion.latest_day.any_status
        ):
            # any one measurement's readings could appear as evidence, even on a day lacking the others
            parts = tuple(
                self._shared_need(Need("readings", names=(n,))) for n in criterion.latest_day.measurements
            )
            return self._shared_need(Need("any", parts=parts))
        elif criterion.readings is not None and criterion.readings.min_count >= 1:
            return self._shared_need(Need("readings", names=(criterion.readings.measurement,)))
        # all-of and any-of are never cut short here: a child judged before the impossible one may still
        # contribute evidence (evaluatedResource); their impossible leaves are cut instead.
        return None

    def _shared_need(self, need: Need) -> Need:
        """One object per distinct requirement, so that each is looked up in a record once."""
        return self._needs.setdefault(need.key, need)

    def possible(self, criterion: Criterion, facts: Facts) -> bool:
        """False when ``criterion`` cannot hold on this record: it requires (through all-of, any-of and
        library uses) a resource with codes that the record has none of. For callers that drop what does not
        hold (code rules)."""
        node = self.nodes.get(id(criterion))
        if node is None:
            node = self.compile(criterion)
        if node.required is None:
            node.required = self._shared_need(Need("all", parts=tuple(self._required(node))))
        return node.required.holds(facts)

    def _required(self, node: Node, depth: int = 0) -> list[Need]:
        criterion = node.criterion
        if depth > 8:
            return []
        if criterion.exists is not None:
            spec = criterion.exists
            codes = self.codes_of(spec)
            return [self._shared_need(Need("exists", resource=spec.resource, codes=codes))] if codes else []
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
                alternatives.append(self._shared_need(Need("all", parts=tuple(required))))
            return [self._shared_need(Need("any", parts=tuple(alternatives)))]
        return []

    def selection(self, spec: LatestDayCriterion) -> tuple[object, tuple[str, ...]]:
        """(One object per way of choosing readings, the anchors its window reads besides the period)."""
        found = self._selections.get(id(spec))
        if found is None:
            within = spec.within
            how: tuple[Any, ...] = (spec.pick, spec.measurements, spec.count_valueless, spec.any_status)
            how += (spec.exclude_encounter_classes, spec.precision, within.start.text, within.end.text)
            selection = self._selections_by_how.setdefault(how, object())
            anchors = tuple(sorted({within.start.anchor, within.end.anchor} - {"period"}))
            found = self._selections[id(spec)] = (selection, anchors)
            self._keep.append(spec)  # ids stay unique while the plans live
        return found

    def exists_plan(self, spec: ExistsCriterion) -> ExistsPlan:
        found = self.exists_plans.get(id(spec))
        if found is None:
            found = self.exists_plans[id(spec)] = ExistsPlan(spec, self.ruleset, self.codes_of(spec))
        return found

    def codes_of(self, spec: ExistsCriterion) -> frozenset[Code]:
        """The codes an exists criterion matches: its own and those of the deviations that are on."""
        codes = self.ruleset.resolve_codes(spec.codes, spec.valuesets)
        for name, adds in spec.deviations.items():
            if name in self.deviations:
                codes = codes | self.ruleset.resolve_codes(adds.codes, adds.valuesets)
        return codes


class ExistsPlan:
    """What an exists criterion tests, prepared once per run: its codes resolved, its time relations."""

    __slots__ = (
        "also",
        "body_sites",
        "codes",
        "diagnosis_codes",
        "discharge_codes",
        "judges_candidates",
        "reason_codes",
        "severity_codes",
        "spec",
        "strengths",
        "timing",
        "window_key",
    )

    def __init__(self, spec: ExistsCriterion, ruleset: RuleSet, codes: frozenset[Code]) -> None:
        resolve = ruleset.resolve_codes
        self.spec = spec  # the plan is found by the spec's id: keep the spec alive with it
        self.codes = codes
        self.reason_codes = (
            resolve(spec.reason_codes, spec.reason_valuesets)
            if spec.reason_codes or spec.reason_valuesets
            else None
        )
        self.diagnosis_codes = resolve((), spec.diagnosis_valuesets) if spec.diagnosis_valuesets else None
        self.severity_codes = resolve((), spec.severity_valuesets) if spec.severity_valuesets else None
        self.discharge_codes = resolve(spec.discharge_codes, ()) if spec.discharge_codes else None
        self.body_sites = resolve(spec.body_sites, ()) if spec.body_sites else None
        self.timing = spec.timing
        self.window_key = window_key(self.timing)
        self.also = [(test, test.timing, window_key(test.timing)) for test in spec.also]
        self.strengths: dict[Code, Strength] = (
            {parse_code_ref(text): strength for text, strength in spec.daily_dose.strengths.items()}
            if spec.daily_dose is not None
            else {}
        )
        """``daily_dose``: the strength per unit of each code, in the table's order."""
        self.judges_candidates = bool(
            spec.value_codes
            or spec.value_valuesets
            or spec.value_tests
            or spec.then
            or spec.daily_dose
            or spec.components
        )
        """Whether candidates have a value test, a daily dose or a ``then`` to pass (else every candidate
        matches)."""


def window_key(timing: tuple[str, Window | DateExpr] | None) -> str:
    """The text a time relation's window is resolved under in a scope (see ``Scope.windows``)."""
    if timing is None:
        return ""
    value = timing[1]
    return value.text if isinstance(value, DateExpr) else f"{value.start.text}..{value.end.text}"


def reads_populations(
    criterion: Criterion, library: dict[str, Criterion], seen: frozenset[str] = frozenset()
) -> bool:
    if criterion.population is not None:
        return True
    children = [*(criterion.all or ()), *(criterion.any or ())]
    if criterion.not_ is not None:
        children.append(criterion.not_)
    if criterion.distinct_days is not None:
        children.append(criterion.distinct_days.of)
    if criterion.exists is not None:
        children += [c for c in (criterion.exists.where, criterion.exists.then) if c is not None]
    if criterion.score_change is not None:
        for side in score_change_exists(criterion.score_change):
            children += [c for c in (side.where, side.then) if c is not None]
    if criterion.use is not None and criterion.use in library and criterion.use not in seen:
        children.append(library[criterion.use])
        seen = seen | {criterion.use}
    return any(reads_populations(child, library, seen) for child in children)
