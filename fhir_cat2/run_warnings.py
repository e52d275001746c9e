"""Warnings about what the data says of a run: a period without encounters, a period defaulted to a year
that has barely begun, a measure whose initial population is empty although patients of its ages exist.

Each is a sentence without patient data (years, counts, measure ids, dates of the run itself). The
pipeline logs them and the run report lists them under ``warnings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from .codes import UnrecognisedCode
from .rules.criteria_schema import AgeCriterion, Criterion
from .rules.measure_schema import MeasureDef
from .terminology import KNOWN_SYSTEMS

EARLY_MONTHS = 3
"""A period defaulted to the current year is 'early' in its first quarter."""


def period_warnings(
    period: tuple[date, date],
    encounter_spans: Mapping[tuple[int, int], int],
    defaulted_on: date | None,
    suggestion: str = "--period",
) -> list[str]:
    """A period with no encounter at all; a period defaulted to the current year early in that year."""
    warnings = []
    year = period[0].year
    first, last = period[0].year, period[1].year
    if not any(n and start <= last and end >= first for (start, end), n in encounter_spans.items()):
        if encounter_spans:
            years = sorted({start for (start, _), n in encounter_spans.items() if n})
            seen = f"{years[0]}" if len(years) == 1 else f"{years[0]}-{years[-1]}"
            warnings.append(
                f"no encounter in the measurement period {year} (the input's encounters are in {seen}):"
                f" no codes or measure results can come from it; check {suggestion}"
            )
        else:
            warnings.append(f"no encounter in the input at all: nothing to derive for the period {year}")
    if defaulted_on is not None and defaulted_on.year == year and defaulted_on.month <= EARLY_MONTHS:
        warnings.append(
            f"the measurement period defaulted to {year}, the current year, and it is only"
            f" {defaulted_on.isoformat()}: most of its care is still to come; to report last year give"
            f" {suggestion} {year - 1}"
        )
    return warnings


def age_range(measure: MeasureDef, library: Mapping[str, Criterion]) -> tuple[int | None, int | None] | None:
    """(min, max) age of a measure's initial population (its first group), when it states one."""
    population = measure.groups[0].populations.get("initial-population")
    if population is None:
        return None
    found = _age_in(population.criteria, library, 0)
    if found is None:
        return None
    if found.equals is not None:
        return found.equals, found.equals
    return found.min, found.max


def _age_in(criterion: Criterion, library: Mapping[str, Criterion], depth: int) -> AgeCriterion | None:
    if depth > 8:
        return None
    if criterion.age is not None:
        return criterion.age
    if criterion.use is not None and criterion.use in library:
        return _age_in(library[criterion.use], library, depth + 1)
    if criterion.exists is not None and criterion.exists.where is not None:  # an age at the visit
        return _age_in(criterion.exists.where, library, depth + 1)
    for child in criterion.all or ():
        found = _age_in(child, library, depth + 1)
        if found is not None:
            return found
    return None


def population_warnings(
    measures: Iterable[MeasureDef],
    library: Mapping[str, Criterion],
    populations: Mapping[str, Mapping[str, int]],
    birth_years: Mapping[int, int],
    period: tuple[date, date],
    *,
    selected: bool = True,
) -> list[str]:
    """Measures with an empty initial population although patients of its age range exist (by year of
    birth: anyone who may have that age at some day of the period).

    ``selected`` False (every measure of the catalogue runs): most measures concern a diagnosis or
    procedure only some patients have (cataract surgery, HIV), so an empty one is no sign of trouble; the
    warning is given only when every measure came out empty, a sign that the data's codes match nothing."""
    measures = list(measures)
    if not selected and any(populations.get(m.id, {}).get("initial-population", 0) for m in measures):
        return []
    warnings = []
    for measure in measures:
        if populations.get(measure.id, {}).get("initial-population", 0):
            continue
        ages = age_range(measure, library)
        low, high = ages if ages is not None else (None, None)
        patients = 0
        for born, count in birth_years.items():
            youngest, oldest = period[0].year - born - 1, period[1].year - born
            if (low is None or oldest >= low) and (high is None or youngest <= high):
                patients += count
        if not patients:
            continue
        if low is not None and high is not None:
            shown = f"aged {low}-{high}" if low != high else f"aged {low}"
        elif low is not None:
            shown = f"aged {low} or more"
        elif high is not None:
            shown = f"aged {high} or less"
        else:
            shown = "in the input"
        warnings.append(
            f"{measure.id}: no patient in the initial population although {patients} patient(s) {shown}"
            f" in {period[0].year} are in the input: check that the data's codes are in its value sets"
            " (see unrecognised-codes.csv; a ConceptMap can map local codes) and the period"
        )
    return warnings


def unrecognised_warnings(rows: Iterable[UnrecognisedCode]) -> list[str]:
    """Local codes left out (a code system no rule uses: the likely work for a ConceptMap), and visits whose
    type no value set knows. Standard codes no rule reads (a respiratory rate, a dental visit's diagnosis) are
    only listed in unrecognised-codes.csv: they are most of any EHR export, and no one's mistake."""
    local: dict[str, int] = {}
    local_codes = 0
    visits = visit_codes = 0
    for row in rows:
        if row.system not in KNOWN_SYSTEMS:
            local_codes += 1
            element = f"{row.resource_type}.{row.element}"
            local[element] = local.get(element, 0) + row.count
        elif row.resource_type == "Encounter":
            visit_codes += 1
            visits += row.count
    warnings = []
    if local_codes:
        shown = ", ".join(f"{element} {count}" for element, count in sorted(local.items()))
        warnings.append(
            f"{local_codes} local code(s) (of code systems no rule uses) were not counted,"
            f" {sum(local.values())} time(s) ({shown}): see unrecognised-codes.csv; map them to standard"
            " codes with a ConceptMap (--concept-maps DIR; draft one with: fhir-cat2 codes suggest)"
        )
    if visit_codes:
        warnings.append(
            f"{visit_codes} encounter type code(s), on {visits} encounter(s), are in no value set: no measure"
            " counts those visits by their type; see unrecognised-codes.csv (a ConceptMap can map them)"
        )
    return warnings


def deviation_warnings(left_out: Mapping[str, int]) -> list[str]:
    """Observations the published logic does not read but a named deviation would: by the spec they do not
    count; say how many, and which deviation would count them (never silently)."""
    return [
        f"{count} Observation(s) were left out: only the deviation {name} reads them, the published logic"
        f" does not; --deviation {name} (config logic.deviations) reads them too;"
        " see README 'Deviations from the published logic'"
        for name, count in sorted(left_out.items())
        if count
    ]
