"""``distinct_days`` (``fhir_cat2/criteria/days.py``): N records on N different days, pooled from several
exists criteria (an Immunization and a Procedure of one vaccine: the CQL's ``Count(distinct (A union B)
return date ...)``), with the ``birth`` date anchor and ages in months that the childhood measures read;
each judged in a one-population table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.errors import RulesError

from .conftest import CPT, encounter, immunization, patient, procedure, run_resources
from .support.tables import load_table, one_measure_table
from .support.tables import populations as table_populations

BIRTH = "2023-03-10"
LIBRARY = """\
vaccine-given:
  label: DTaP given from 42 days old to the 2nd birthday
  any:
    - exists: {resource: Immunization, label: DTaP immunization, codes: ["cvx#20"], statuses: [completed],
                starts_during: [birth.start+42d, birth.start+2y]}
    - exists: {resource: Procedure, label: DTaP administered, codes: ["cpt#90700"], statuses: [completed],
                starts_during: [birth.start+42d, birth.start+2y]}
"""
VISIT = '{exists: {resource: Encounter, label: visit, codes: ["cpt#99213"], during: period}}'


def table(count: int, age: str, of: str) -> str:
    return one_measure_table(
        f"{{distinct_days: {{min: {count}, of: {of}}}}}",
        initial_population=f"all:\n  - {VISIT}\n  - {age}",
        library=LIBRARY,
    )


def populations(
    tmp_path: Path,
    *given: dict[str, Any],
    count: int = 3,
    birth: str = BIRTH,
    age: str = "{age: {equals: 2}}",
    of: str = "{use: vaccine-given}",
) -> dict[str, bool]:
    return table_populations(tmp_path, table(count, age, of), *given, person=patient(birth=birth))


def shot(rid: str, day: str) -> dict[str, Any]:
    return immunization(rid, "20", f"{day}T10:00:00Z")


def administered(rid: str, day: str) -> dict[str, Any]:
    return procedure(rid, "90700", f"{day}T10:00:00Z", system=CPT)


def test_days_are_pooled_across_resource_types(tmp_path):
    given = [shot("a", "2023-05-10"), administered("b", "2023-07-10"), shot("c", "2023-09-10")]
    assert populations(tmp_path, *given)["numerator"]


def test_an_immunization_and_a_procedure_on_one_day_count_once(tmp_path):
    given = [shot("a", "2023-05-10"), administered("b", "2023-05-10"), shot("c", "2023-09-10")]
    assert not populations(tmp_path, *given)["numerator"]
    assert populations(tmp_path, *given, count=2)["numerator"]


def test_two_doses_on_one_day_count_once(tmp_path):
    given = [
        shot("a", "2023-05-10"),
        immunization("b", "20", "2023-05-10T16:00:00Z"),
        shot("c", "2023-09-10"),
    ]
    assert not populations(tmp_path, *given)["numerator"]


@pytest.mark.parametrize(
    ("first", "expected"),
    [("2023-04-21", True), ("2023-04-20", False), ("2025-03-10", True), ("2025-03-11", False)],
    ids=["42-days-old", "41-days-old", "2nd-birthday", "day-after-2nd-birthday"],
)
def test_birth_anchor_bounds_the_window(tmp_path, first, expected):
    given = [shot("a", first), shot("b", "2023-09-10"), administered("c", "2023-11-10")]
    assert populations(tmp_path, *given)["numerator"] is expected


def test_leap_day_birth_second_birthday_is_28_february(tmp_path):
    """CQL adds years clamping the day: born 29 February 2024, the 2nd birthday is 28 February 2026."""
    given = [shot("a", "2024-05-01"), shot("b", "2024-07-01"), shot("c", "2026-02-28")]
    assert populations(tmp_path, *given, birth="2024-02-29", age="{age: {min: 0}}")["numerator"]
    given[2] = shot("c", "2026-03-01")
    assert not populations(tmp_path, *given, birth="2024-02-29", age="{age: {min: 0}}")["numerator"]


def test_a_single_exists_can_be_counted(tmp_path):
    of = '{exists: {resource: Immunization, codes: ["cvx#20"], statuses: [completed]}}'
    given = [shot("a", "2023-05-10"), administered("b", "2023-07-10"), shot("c", "2023-09-10")]
    assert populations(tmp_path, *given, count=2, of=of)["numerator"]
    assert not populations(tmp_path, *given, count=3, of=of)["numerator"]


def test_distinct_days_of_an_all_of_is_refused(tmp_path):
    of = "{all: [{use: vaccine-given}]}"
    with pytest.raises(RulesError, match="distinct_days counts the records of an exists"):
        populations(tmp_path, count=1, of=of)


@pytest.mark.parametrize(
    ("birth", "expected"),
    [("2024-10-01", True), ("2024-10-02", False), ("2024-09-15", True)],
    ids=["3-months", "a-day-short", "more"],
)
def test_age_in_months(tmp_path, birth, expected):
    """AgeInMonthsAt(start of the period) >= 3: whole calendar months."""
    given = [shot("a", "2025-01-02")]
    age = "{age: {min: 3, unit: months, at: period.start}}"
    assert populations(tmp_path, *given, count=1, birth=birth, age=age)["initial-population"] is expected


def test_no_birth_date_holds_no_birth_window(tmp_path):
    """Without a birthDate the window from it is unknown: no dose falls in it (the population still
    holds: the visit alone is asked here)."""
    given = [shot("a", "2023-05-10"), administered("b", "2023-07-10"), shot("c", "2023-09-10")]
    visit_only = '{exists: {resource: Encounter, codes: ["cpt#99213"], during: period}}'
    ruleset = load_table(tmp_path, table(1, visit_only, "{use: vaccine-given}"))
    born = run_resources([patient(birth=BIRTH), encounter("e1"), *given], ruleset, measures=("CMS9999",))
    assert born.population("CMS9999")["numerator"]
    unborn = patient()
    del unborn["birthDate"]
    run = run_resources([unborn, encounter("e1"), *given], ruleset, measures=("CMS9999",))
    assert run.population("CMS9999")["initial-population"]
    assert not run.population("CMS9999")["numerator"]
