"""Read a rules table, validate it, and compile it for fast matching.

Every problem is reported as ``file:line: field: message`` and all problems are reported at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..conceptmaps import ConceptMaps
from ..deviations import ALL as DEVIATIONS_ALL
from ..errors import RulesError
from ..sources.records import Code
from .base import parse_code_ref
from .criteria_schema import SCORED_ASSESSMENT, Criterion, ExistsCriterion, ScoreChangeCriterion
from .measure_schema import CLAIMS_CATEGORIES, MeasureDef
from .schema import CodeRule, CodeSet, Measurement, RulesTable, UnitConversion
from .timing import DateExpr
from .valuesets import ValueSetRegistry
from .yamlsource import LineMap, Path_, field_name, load_yaml, validation_problems

DEFAULT_RULES = "rules.yaml"


@dataclass(frozen=True, slots=True)
class CompiledMeasurement:
    """A measurement with its codes resolved, for one set of deviations (see ``fhir_cat2.deviations``)."""

    name: str
    spec: Measurement
    codes: frozenset[Code]
    panels: frozenset[Code]
    units: dict[str, UnitConversion] = field(default_factory=dict)
    standalone: bool = True
    """Whether Observations coded with ``codes`` count by themselves (else only panel components do)."""
    standalone_via: str = ""
    """The deviation that lets them count ('' when the measurement's own definition does)."""
    via: dict[Code, str] = field(default_factory=dict)
    """Codes and panels that count only through a deviation: the deviation's name."""
    unit_via: dict[str, str] = field(default_factory=dict)
    """Units converted as a deviation says: the deviation's name."""


def compile_measurement(
    ruleset: RuleSet, name: str, spec: Measurement, deviations: frozenset[str]
) -> CompiledMeasurement:
    """The measurement as read with these deviations on: their codes, panels and conversions added."""
    excluded = frozenset(parse_code_ref(text) for text in spec.exclude_codes)
    codes = set(ruleset.resolve_codes(spec.codes, spec.valuesets) - excluded)
    panels = {parse_code_ref(text) for text in spec.component_of}
    units = dict(spec.units)
    standalone, standalone_via = spec.standalone, ""
    via: dict[Code, str] = {}
    unit_via: dict[str, str] = {}
    for deviation, adds in sorted(spec.deviations.items()):
        if deviation not in deviations:
            continue
        if adds.standalone and not standalone:
            standalone, standalone_via = True, deviation
        for text in adds.codes:
            code = parse_code_ref(text)
            if code not in codes:
                codes.add(code)
                via[code] = deviation
        for text in adds.component_of:
            code = parse_code_ref(text)
            if code not in panels:
                panels.add(code)
                via[code] = deviation
        for unit, conversion in adds.units.items():
            units[unit] = conversion
            unit_via[unit] = deviation
    return CompiledMeasurement(
        name, spec, frozenset(codes), frozenset(panels), units, standalone, standalone_via, via, unit_via
    )


@dataclass(repr=False)
class RuleSet:
    """A validated rules table with every code set resolved against the value-set registry."""

    table: RulesTable
    source: str
    registry: ValueSetRegistry
    measurements: dict[str, CompiledMeasurement] = field(default_factory=dict)
    """Every measurement as read with every deviation on: what ingest must keep."""
    _by_deviations: dict[frozenset[str], dict[str, CompiledMeasurement]] = field(default_factory=dict)
    _code_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], frozenset[Code]] = field(default_factory=dict)
    _relevant: dict[str, frozenset[Code]] | None = None
    _known: dict[str, frozenset[Code]] | None = None
    _deviation_codes: dict[Code, str] | None = None
    concept_maps: ConceptMaps = field(default_factory=ConceptMaps)
    """The site's code mappings: a local code they map counts as its target (``--concept-maps``)."""

    def __repr__(self) -> str:
        return f"RuleSet({self.source!r})"

    def resolve_codes(self, codes: tuple[str, ...], valuesets: tuple[str, ...]) -> frozenset[Code]:
        key = (codes, valuesets)
        cached = self._code_cache.get(key)
        if cached is None:
            found: set[Code] = {parse_code_ref(text) for text in codes}
            for ref in valuesets:
                found.update(self.registry.codes(ref))
            cached = frozenset(found)
            self._code_cache[key] = cached
        return cached

    def measurements_for(self, deviations: frozenset[str]) -> dict[str, CompiledMeasurement]:
        """Every measurement as read with these deviations on (compiled once per set)."""
        found = self._by_deviations.get(deviations)
        if found is None:
            found = {
                name: compile_measurement(self, name, spec, deviations)
                for name, spec in self.table.measurements.items()
            }
            self._by_deviations[deviations] = found
        return found

    def deviation_codes(self) -> dict[Code, str]:
        """Observation codes and panels that a measurement reads only through a deviation: its name."""
        if self._deviation_codes is None:
            found: dict[Code, str] = {}
            for compiled in self.measurements.values():
                found.update(compiled.via)
            self._deviation_codes = found
        return self._deviation_codes

    def code_rules(self, program: str, year: int) -> list[CodeRule]:
        return [r for r in self.table.code_rules if program in r.programs and year in r.years]

    def measure(self, measure_id: str) -> MeasureDef:
        for measure in self.table.measures:
            if measure.id == measure_id:
                return measure
        raise KeyError(measure_id)

    def relevant_codes(self) -> dict[str, frozenset[Code]]:
        """Per resource type whose volume we filter, the codes any rule or measure reads (with the local
        codes a ConceptMap maps to one of them)."""
        if self._relevant is None:
            relevant = dict(self.known_codes())
            # Conditions and Encounters are always kept whole: claims point at every diagnosis of a visit.
            relevant.pop("Condition", None)
            relevant.pop("Encounter", None)
            self._relevant = relevant
        return self._relevant

    def value_screened_codes(self) -> dict[str, frozenset[Code]]:
        """Per resource type, the value codes of the exists criteria that read every resource of the type
        (no codes: CMS646's ``[Observation]`` staging result, known by its value): ingest keeps a resource
        whose code no rule reads when its value (valueCodeableConcept) has one of these."""
        found: dict[str, set[Code]] = {}
        for exists in iter_exists_all(self.table):
            if exists.codes or exists.valuesets or exists.classes:
                continue
            if exists.value_codes or exists.value_valuesets:
                codes = self.resolve_codes(exists.value_codes, exists.value_valuesets)
                found.setdefault(exists.resource, set()).update(codes)
        return {k: frozenset(v) for k, v in found.items()}

    def known_codes(self) -> dict[str, frozenset[Code]]:
        """Per resource type, the codes of its code element that any rule, measure or site map reads."""
        if self._known is None:
            self._known = self._compute_known_codes()
        return self._known

    def _compute_known_codes(self) -> dict[str, frozenset[Code]]:
        wanted: dict[str, set[Code]] = {"Observation": set()}
        for compiled in self.measurements.values():
            wanted["Observation"].update(compiled.codes, compiled.panels)
        for exists in iter_exists_all(self.table):
            codes = wanted.setdefault(exists.resource, set())
            codes.update(self.resolve_codes(exists.codes, exists.valuesets))
            for adds in exists.deviations.values():  # kept, whether or not the run turns them on
                codes.update(self.resolve_codes(adds.codes, adds.valuesets))
            diagnoses = (*exists.diagnosis_valuesets, *exists.principal_diagnosis_valuesets)
            if diagnoses:  # an Encounter's diagnoses are Conditions
                wanted.setdefault("Condition", set()).update(self.resolve_codes((), diagnoses))
        mapped = list(self.concept_maps.targets())
        for codes in wanted.values():
            codes.update([source for source, target in mapped if target in codes])
        return {k: frozenset(v) for k, v in wanted.items()}


def table_criteria(table: RulesTable) -> Iterator[Criterion]:
    """Every top-level criterion of a table: library, populations, code-rule and claims-option triggers."""
    yield from table.library.values()
    for rule in table.code_rules:
        if rule.when is not None:
            yield rule.when
    for measure in table.measures:
        for group in measure.groups:
            for population in group.populations.values():
                yield population.criteria
            for stratifier in group.stratifiers:
                yield stratifier.criteria
            for entry in group.claims:
                if entry.eligible is not None:
                    yield entry.eligible
                for category in CLAIMS_CATEGORIES:
                    for option in entry.options(category):
                        if option.when is not None:
                            yield option.when


def iter_exists_all(table: RulesTable) -> Iterator[ExistsCriterion]:
    for criterion in table_criteria(table):
        yield from iter_exists(criterion, None)
    for measure in table.measures:
        if measure.episode is not None:
            yield from _exists_tree(measure.episode)


def score_change_exists(change: ScoreChangeCriterion) -> tuple[ExistsCriterion, ...]:
    """The exists criteria a score change judges: baseline, follow-up and the addends of its scores."""
    return (change.baseline, change.follow_up, *(addend.exists for addend in change.plus))


def _exists_tree(exists: ExistsCriterion) -> Iterator[ExistsCriterion]:
    yield exists
    for child in (exists.where, exists.then):
        if child is not None:
            yield from iter_exists(child, None)


def iter_exists(
    criterion: Criterion, library: dict[str, Criterion] | None = None
) -> Iterator[ExistsCriterion]:
    """Every exists criterion inside ``criterion`` (following ``use`` into ``library`` when given)."""
    if criterion.use is not None and library is not None and criterion.use in library:
        yield from iter_exists(library[criterion.use], None)  # library entries are walked on their own
    if criterion.exists is not None:
        yield from _exists_tree(criterion.exists)
    if criterion.score_change is not None:
        for exists in score_change_exists(criterion.score_change):
            yield from _exists_tree(exists)
    for child in (*(criterion.all or ()), *(criterion.any or ())):
        yield from iter_exists(child, library)
    if criterion.not_ is not None:
        yield from iter_exists(criterion.not_, library)
    if criterion.distinct_days is not None:
        yield from iter_exists(criterion.distinct_days.of, library)


def pooled_exists(
    criterion: Criterion, library: dict[str, Criterion], _seen: frozenset[str] = frozenset()
) -> list[ExistsCriterion] | None:
    """The exists criteria whose matching records a ``distinct_days`` pools: ``criterion`` itself, or the
    alternatives of an any-of (following ``use``); None when it is anything else."""
    if criterion.exists is not None:
        return [criterion.exists]
    if criterion.use is not None:
        if criterion.use not in library or criterion.use in _seen:
            return None
        return pooled_exists(library[criterion.use], library, _seen | {criterion.use})
    if criterion.any is not None:
        found: list[ExistsCriterion] = []
        for child in criterion.any:
            part = pooled_exists(child, library, _seen)
            if part is None:
                return None
            found += part
        return found
    return None


def _exprs_of(criterion: Criterion) -> Iterator[DateExpr]:
    """Date expressions judged in the criterion's own scope (not those inside exists where/then)."""
    if criterion.age is not None:
        yield criterion.age.at
    if criterion.deceased is not None:
        yield criterion.deceased.by
    if criterion.latest_day is not None:
        yield from criterion.latest_day.within.exprs()
    if criterion.readings is not None:
        yield from criterion.readings.within.exprs()
    if criterion.exists is not None:
        yield from _exists_exprs(criterion.exists)


def _exists_exprs(exists: ExistsCriterion) -> Iterator[DateExpr]:
    timings = [t.timing for t in exists.also]
    if exists.timing is not None:
        timings.append(exists.timing)
    for _, value in timings:
        if isinstance(value, DateExpr):
            yield value
        else:
            yield from value.exprs()
    if exists.more_than_one_order is not None:
        yield from exists.more_than_one_order.exprs()
    if exists.cumulative_days is not None:
        yield from exists.cumulative_days.within.exprs()


def free_anchors(
    criterion: Criterion, library: dict[str, Criterion], _seen: frozenset[str] = frozenset()
) -> set[str]:
    """Anchors a criterion needs bound by its surroundings (besides 'period')."""
    found = {expr.anchor for expr in _exprs_of(criterion)}
    if criterion.exists is not None:
        found |= exists_free_anchors(criterion.exists, library, _seen)
    if criterion.score_change is not None:
        change = criterion.score_change
        found |= exists_free_anchors(change.baseline, library, _seen)
        found |= exists_free_anchors(change.follow_up, library, _seen) - {change.baseline.as_}
        for addend in change.plus:
            found |= exists_free_anchors(addend.exists, library, _seen) - {SCORED_ASSESSMENT}
    for child in (*(criterion.all or ()), *(criterion.any or ())):
        found |= free_anchors(child, library, _seen)
    if criterion.not_ is not None:
        found |= free_anchors(criterion.not_, library, _seen)
    if criterion.distinct_days is not None:
        found |= free_anchors(criterion.distinct_days.of, library, _seen)
    if criterion.use is not None and criterion.use in library and criterion.use not in _seen:
        found |= free_anchors(library[criterion.use], library, _seen | {criterion.use})
    found.discard("period")
    return found


def exists_free_anchors(
    exists: ExistsCriterion, library: dict[str, Criterion], _seen: frozenset[str] = frozenset()
) -> set[str]:
    found = {expr.anchor for expr in _exists_exprs(exists)}
    for bound in (exists.is_, exists.other_than, exists.refers_to):
        if bound is not None:
            found.add(bound)
    if exists.part_of is not None and exists.part_of != "any":
        found.add(exists.part_of)
    for child in (exists.where, exists.then):
        if child is not None:
            found |= free_anchors(child, library, _seen) - {exists.as_}
    found.discard("period")
    return found


PART_KEYS = ("library", "code_rules", "measures")
"""What an included file may hold."""


class TableSources:
    """Where each part of a table read from several files came from: ``where(path)`` is 'file:line'."""

    def __init__(self, source: str, lines: LineMap) -> None:
        self.source, self.lines = source, lines
        self._parts: dict[tuple[str, str | int], tuple[str, LineMap, str | int]] = {}
        """(section, name or combined index) -> (file, its lines, name or index in that file)."""

    def add(self, section: str, key: str | int, source: str, lines: LineMap, own: str | int) -> None:
        self._parts[(section, key)] = (source, lines, own)

    def where(self, path: Path_) -> str:
        if len(path) >= 2 and isinstance(path[0], str):
            part = self._parts.get((path[0], path[1]))
            if part is not None:
                source, lines, own = part
                return f"{source}:{lines.line_of((path[0], own, *path[2:]))}"
        return f"{self.source}:{self.lines.line_of(path)}"


def _pydantic_problems(exc: ValidationError, sources: TableSources) -> list[str]:
    return validation_problems(exc, sources.where)


def _read(path: str | Path | None) -> tuple[RulesTable, str, TableSources]:
    if path is None:
        source = f"package:{DEFAULT_RULES}"
        folder: Traversable = resources.files("fhir_cat2") / "data"
        text = (folder / DEFAULT_RULES).read_text(encoding="utf-8")
    else:
        source = str(path)
        folder = Path(path).parent
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(source, [f"{source}: cannot read: {exc}"]) from None
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise RulesError(
            source, [f"{source}:1: (top level): expected a mapping with version, name, code_rules"]
        )
    sources = TableSources(source, lines)
    problems = _include(data, folder, source if path is not None else "package:", sources)
    problems += _resolve_like(data, sources)
    if problems:
        raise RulesError(source, problems)
    try:
        table = RulesTable.model_validate(data)
    except ValidationError as exc:
        raise RulesError(source, _pydantic_problems(exc, sources)) from None
    return table, source, sources


def _include(data: dict[str, Any], folder: Traversable, prefix: str, sources: TableSources) -> list[str]:
    """Join the files ``data['include']`` names into ``data`` (their library, code rules and measures)."""
    patterns = data.get("include") or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        return [f"{sources.where(('include',))}: include: a list of file patterns"]
    problems: list[str] = []
    library_from: dict[str, str] = {name: sources.source for name in data.get("library") or {}}
    for pattern in patterns:
        found = _matching(folder, pattern)
        if not found:
            problems.append(
                f"{sources.where(('include',))}: include: no file matches '{pattern}' next to this file"
                " (a copy of the shipped table needs its measures/ folder too)"
            )
        for relative, file in found:
            part_source = f"package:{relative}" if prefix == "package:" else str(file)
            try:
                part, part_lines = load_yaml(file.read_text(encoding="utf-8"), part_source)
            except OSError as exc:
                problems.append(f"{part_source}: cannot read: {exc}")
                continue
            if not isinstance(part, dict) or set(part) - set(PART_KEYS):
                extra = sorted(set(part) - set(PART_KEYS)) if isinstance(part, dict) else []
                problems.append(
                    f"{part_source}:1: (top level): an included file holds {', '.join(PART_KEYS)} only"
                    + (f" (found {', '.join(map(str, extra))})" if extra else "")
                )
                continue
            for name, criterion in (part.get("library") or {}).items():
                if name in library_from:
                    problems.append(
                        f"{part_source}:{part_lines.line_of(('library', name))}: library.{name}: already"
                        f" defined in {library_from[name]}"
                    )
                    continue
                library_from[name] = part_source
                data.setdefault("library", {})[name] = criterion
                sources.add("library", name, part_source, part_lines, name)
            for section in ("code_rules", "measures"):
                items = data.setdefault(section, []) or []
                data[section] = items
                for index, item in enumerate(part.get(section) or []):
                    sources.add(section, len(items), part_source, part_lines, index)
                    items.append(item)
    data.pop("include", None)
    return problems


def _resolve_like(data: dict[str, Any], sources: TableSources) -> list[str]:
    """``exists: {like: NAME, ...}`` (or ``episode: {like: NAME}``): the exists of library criterion NAME,
    with the keys given here on top (what a YAML merge key does within one file, across the files of a
    table)."""
    library = data.get("library") or {}
    problems: list[str] = []

    def walk(value: Any, path: Path_) -> Any:
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if path and path[-1] in ("exists", "episode") and "like" in value:
            name = value["like"]
            base = library.get(name) if isinstance(name, str) else None
            if not isinstance(base, dict) or not isinstance(base.get("exists"), dict):
                problems.append(
                    f"{sources.where((*path, 'like'))}: {field_name((*path, 'like'))}: '{name}' is not a"
                    " library criterion that is an exists"
                )
                return value
            value = {**base["exists"], **{k: v for k, v in value.items() if k != "like"}}
        return {key: walk(item, (*path, key)) for key, item in value.items()}

    for section in PART_KEYS:
        if section in data:
            data[section] = walk(data[section], (section,))
    return problems


def _matching(folder: Traversable, pattern: str) -> list[tuple[str, Traversable]]:
    """(Path relative to ``folder``, file) of the files matching ``pattern`` ('measures/*.yaml'), by name."""
    *dirs, name = pattern.split("/")
    here = folder
    for part in dirs:
        here = here / part
    if not here.is_dir():
        return []
    found = sorted((f.name, f) for f in here.iterdir() if f.is_file() and fnmatch(f.name, name))
    return [("/".join([*dirs, file_name]), file) for file_name, file in found]


def read_table(path: str | Path | None = None) -> RulesTable:
    """A rules table checked against the schema only (value sets are not resolved: see load_rules)."""
    return _read(path)[0]


def referenced_valuesets(table: RulesTable) -> set[str]:
    """Every value set a table refers to (measurements, criteria, value tests, reasons, diagnoses)."""
    found: set[str] = set()
    for measurement in table.measurements.values():
        found.update(measurement.valuesets)
    for exists in iter_exists_all(table):
        found.update(
            exists.valuesets,
            exists.value_valuesets,
            exists.diagnosis_valuesets,
            exists.principal_diagnosis_valuesets,
            exists.reason_valuesets,
            exists.severity_valuesets,
        )
        for test in exists.value_tests:
            found.update(test.valuesets)
    return found


def load_rules(
    path: str | Path | None = None,
    registry: ValueSetRegistry | None = None,
    concept_maps: ConceptMaps | None = None,
) -> RuleSet:
    """Load and check a rules table; ``path`` None means the table shipped in the package."""
    table, source, sources = _read(path)
    registry = registry if registry is not None else ValueSetRegistry.shipped()
    problems = _cross_check(table, registry, sources)
    if problems:
        raise RulesError(source, problems)
    ruleset = RuleSet(table, source, registry)
    if concept_maps is not None:
        ruleset.concept_maps = concept_maps
    ruleset.measurements = ruleset.measurements_for(DEVIATIONS_ALL)
    return ruleset


def _cross_check(table: RulesTable, registry: ValueSetRegistry, sources: TableSources) -> list[str]:
    problems: list[str] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(f"{sources.where(loc)}: {field_name(loc)}: {message}")

    def check_valuesets(loc: tuple[str | int, ...], refs: tuple[str, ...]) -> None:
        for index, ref in enumerate(refs):
            if ref not in registry:
                problem(
                    (*loc, index),
                    f"value set '{ref}' is not known (not shipped; load it with --valuesets DIR)",
                )

    for name, measurement in table.measurements.items():
        check_valuesets(("measurements", name, "valuesets"), measurement.valuesets)

    measure_ids = [m.id for m in table.measures]
    seen_ids: set[str] = set()
    for index, rule in enumerate(table.code_rules):
        loc: tuple[str | int, ...] = ("code_rules", index)
        if rule.id in seen_ids:
            problem((*loc, "id"), f"duplicate rule id '{rule.id}'")
        seen_ids.add(rule.id)
        if rule.measurement is not None and rule.measurement not in table.measurements:
            problem((*loc, "measurement"), f"unknown measurement '{rule.measurement}'")
        if rule.measure is not None and rule.measure not in measure_ids:
            problem((*loc, "measure"), f"unknown measure '{rule.measure}'")

    # Bands of rules that read the same measurement for the same program and year must not overlap.
    for i, first in enumerate(table.code_rules):
        for j in range(i + 1, len(table.code_rules)):
            second = table.code_rules[j]
            if (
                first.band is None
                or second.band is None
                or first.measurement != second.measurement
                or first.measure != second.measure
                or not set(first.programs) & set(second.programs)
                or not set(first.years) & set(second.years)
            ):
                continue
            if first.band.overlaps(second.band):
                problem(
                    ("code_rules", j, "band"),
                    f"band {second.band.describe()} of '{second.id}' overlaps band {first.band.describe()}"
                    f" of '{first.id}' for the same measurement, program and year",
                )

    library = table.library
    for name, criterion in library.items():
        _check_criterion(criterion, ("library", name), table, check_valuesets, problem)
        # a library criterion may read anchors its users bind (encounter, procedure, an exists' `as`):
        # they are checked where it is used (free_anchors follows `use`)
    for index, rule in enumerate(table.code_rules):
        if rule.when is not None:
            loc = ("code_rules", index, "when")
            _check_criterion(rule.when, loc, table, check_valuesets, problem)
            _check_anchors(rule.when, loc, library, {"encounter"}, problem)
    for m_index, measure in enumerate(table.measures):
        if measure_ids.count(measure.id) > 1:
            problem(("measures", m_index, "id"), f"duplicate measure id '{measure.id}'")
        bound = {measure.episode_anchor} if measure.episode_anchor else set()
        if measure.episode is not None:
            loc = ("measures", m_index, "episode")
            wrapper = Criterion(exists=measure.episode)
            _check_criterion(wrapper, (*loc[:-1], "episode"), table, check_valuesets, problem, exists_loc=loc)
            _check_anchors(wrapper, loc, library, set(), problem)
        for g_index, group in enumerate(measure.groups):
            for code, population in group.populations.items():
                loc = ("measures", m_index, "groups", g_index, "populations", code, "criteria")
                _check_criterion(population.criteria, loc, table, check_valuesets, problem)
                _check_anchors(population.criteria, loc, library, bound, problem)
            for s_index, stratifier in enumerate(group.stratifiers):
                loc = ("measures", m_index, "groups", g_index, "stratifiers", s_index, "criteria")
                _check_criterion(stratifier.criteria, loc, table, check_valuesets, problem)
                _check_anchors(stratifier.criteria, loc, library, bound, problem)
            if group.claims and measure.mips is None:
                problem(
                    ("measures", m_index, "groups", g_index, "claims"),
                    "claims codes need the measure's mips id",
                )
            seen_years: set[int] = set()
            for c_index, entry in enumerate(group.claims):
                eloc: tuple[str | int, ...] = ("measures", m_index, "groups", g_index, "claims", c_index)
                overlap = seen_years & set(entry.years)
                if overlap:
                    problem(
                        (*eloc, "years"),
                        f"years {sorted(overlap)} are already covered by another claims entry",
                    )
                seen_years |= set(entry.years)
                if entry.eligible is not None:
                    _check_criterion(entry.eligible, (*eloc, "eligible"), table, check_valuesets, problem)
                    _check_anchors(entry.eligible, (*eloc, "eligible"), library, {"encounter"}, problem)
                for category in CLAIMS_CATEGORIES:
                    for o_index, option in enumerate(entry.options(category)):
                        if option.when is not None:
                            oloc = (*eloc, category, o_index, "when")
                            _check_criterion(option.when, oloc, table, check_valuesets, problem)
                            _check_anchors(option.when, oloc, library, {"encounter"}, problem)
    return problems


def _check_anchors(criterion, loc, library, bound, problem) -> None:  # type: ignore[no-untyped-def]
    unbound = free_anchors(criterion, library) - set(bound) - {"birth"}  # the birth date is always bound
    for name in sorted(unbound):
        where = (
            "an encounter (code rules, claims options and encounter-based measures bind it)"
            if name == "encounter"
            else f"an enclosing exists with 'as: {name}'"
        )
        problem(loc, f"date anchor '{name}' is not bound here; it needs {where}")


def _check_exists(exists: ExistsCriterion, loc, table, check_valuesets, problem) -> None:  # type: ignore[no-untyped-def]
    check_valuesets((*loc, "valuesets"), exists.valuesets)
    check_valuesets((*loc, "value_valuesets"), exists.value_valuesets)
    check_valuesets((*loc, "diagnosis_valuesets"), exists.diagnosis_valuesets)
    check_valuesets((*loc, "principal_diagnosis_valuesets"), exists.principal_diagnosis_valuesets)
    check_valuesets((*loc, "reason_valuesets"), exists.reason_valuesets)
    check_valuesets((*loc, "severity_valuesets"), exists.severity_valuesets)
    for index, test in enumerate(exists.value_tests):
        check_valuesets((*loc, "value_tests", index, "valuesets"), test.valuesets)
    for key in ("where", "then"):
        child = getattr(exists, key)
        if child is not None:
            _check_criterion(child, (*loc, key), table, check_valuesets, problem)


def _check_criterion(criterion, loc, table, check_valuesets, problem, exists_loc=None) -> None:  # type: ignore[no-untyped-def]
    if criterion.exists is not None:
        _check_exists(criterion.exists, exists_loc or (*loc, "exists"), table, check_valuesets, problem)
    if criterion.use is not None and criterion.use not in table.library:
        problem((*loc, "use"), f"unknown library criterion '{criterion.use}'")
    if criterion.score_change is not None:
        change = criterion.score_change
        for key, exists in (("baseline", change.baseline), ("follow_up", change.follow_up)):
            _check_exists(exists, (*loc, "score_change", key), table, check_valuesets, problem)
        for index, addend in enumerate(change.plus):
            aloc = (*loc, "score_change", "plus", index, "exists")
            _check_exists(addend.exists, aloc, table, check_valuesets, problem)
    if criterion.latest_day is not None:
        for index, name in enumerate(criterion.latest_day.measurements):
            if name not in table.measurements:
                problem((*loc, "latest_day", "measurements", index), f"unknown measurement '{name}'")
        for name in criterion.latest_day.test:
            if name not in criterion.latest_day.measurements:
                problem(
                    (*loc, "latest_day", "test", name),
                    f"'{name}' is not one of this criterion's measurements",
                )
    if criterion.readings is not None and criterion.readings.measurement not in table.measurements:
        problem((*loc, "readings", "measurement"), f"unknown measurement '{criterion.readings.measurement}'")
    for key in ("all", "any"):
        for index, child in enumerate(getattr(criterion, key) or ()):
            _check_criterion(child, (*loc, key, index), table, check_valuesets, problem)
    if criterion.not_ is not None:
        _check_criterion(criterion.not_, (*loc, "not"), table, check_valuesets, problem)
    if criterion.distinct_days is not None:
        of_loc = (*loc, "distinct_days", "of")
        _check_criterion(criterion.distinct_days.of, of_loc, table, check_valuesets, problem)
        if not pooled_exists(criterion.distinct_days.of, table.library):
            problem(of_loc, "distinct_days counts the records of an exists, or an any-of of them (use too)")


__all__ = [
    "CodeSet",
    "CompiledMeasurement",
    "RuleSet",
    "free_anchors",
    "iter_exists",
    "load_rules",
    "pooled_exists",
    "read_table",
    "referenced_valuesets",
]
