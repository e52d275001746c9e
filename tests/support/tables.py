"""A one-measure rules table for the criterion tests, and a run of it.

``one_measure_table`` writes the YAML of a table with one measure: an office visit in the period as its
initial population (unless told otherwise), the denominator equal to it, and the criterion under test as
its numerator. ``run_table`` loads such a table from ``tmp_path`` and runs it on a patient, a visit and the
resources under test; ``populations`` and ``numerator_met`` read its outcome.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import indent
from typing import Any

from fhir_cat2.rules.loader import RuleSet, load_rules

from ..conftest import Run, encounter, patient, run_resources

MEASURE = "CMS9999"
OFFICE_VISIT = 'exists: {resource: Encounter, label: Office visit, codes: ["cpt#99213"], during: period}'


def one_measure_table(
    numerator: str,
    *,
    initial_population: str = OFFICE_VISIT,
    library: str | None = None,
    improvement_notation: str = "increase",
    measure: str = MEASURE,
    measure_keys: str = "",
    header: bool = True,
) -> str:
    """The YAML of a table whose one measure counts ``numerator`` (a criterion, as YAML) among the patients
    of ``initial_population``. ``library`` holds named criteria (YAML, one entry a name); ``measure_keys``
    more keys of the measure (basis, episode, url...); ``header: False`` leaves out version and name, for
    a file another table includes."""
    lines = ["version: 1", "name: criterion tests"] if header else []
    if library is not None:
        lines += ["library:", indent(library.rstrip("\n"), "  ")]
    lines += [
        "measures:",
        f"  - id: {measure}",
        "    title: Criterion test",
        f"    improvement_notation: {improvement_notation}",
        "    source: test",
    ]
    if measure_keys:
        lines.append(indent(measure_keys.rstrip("\n"), "    "))
    lines += [
        "    groups:",
        "      - id: g1",
        "        populations:",
        "          initial-population:",
        "            id: ip",
        "            criteria:",
        indent(initial_population.rstrip("\n"), " " * 14),
        "          denominator: {id: den, criteria: {population: initial-population}}",
        "          numerator:",
        "            id: num",
        "            criteria:",
        indent(numerator.rstrip("\n"), " " * 14),
    ]
    return "\n".join(lines) + "\n"


def load_table(tmp_path: Path, table: str) -> RuleSet:
    """Write ``table`` as ``tmp_path/rules.yaml`` and load it."""
    path = tmp_path / "rules.yaml"
    path.write_text(table)
    return load_rules(path)


def run_table(
    tmp_path: Path,
    table: str,
    *resources: dict[str, Any],
    person: dict[str, Any] | None = None,
    visit: dict[str, Any] | None = None,
    measure: str = MEASURE,
) -> Run:
    """Run ``table``'s measure on a patient (``person``, else the default one), a visit (``visit``, else the
    default office visit e1) and ``resources``."""
    ruleset = load_table(tmp_path, table)
    given = [person or patient(), visit or encounter("e1"), *resources]
    return run_resources(given, ruleset, measures=(measure,))


def populations(tmp_path: Path, table: str, *resources: dict[str, Any], **run: Any) -> dict[str, bool]:
    """The patient's membership of each population of ``table``'s measure (see ``run_table``)."""
    return run_table(tmp_path, table, *resources, **run).population(run.get("measure", MEASURE))


def numerator_met(tmp_path: Path, table: str, *resources: dict[str, Any], **run: Any) -> bool:
    """Whether the patient is in the numerator of ``table``'s measure (see ``run_table``)."""
    return populations(tmp_path, table, *resources, **run)["numerator"]
