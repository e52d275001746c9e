"""A rules table in several files: ``include`` joins their library, code rules and measures; problems name
the file and line they are in; ``like`` starts an exists from a library criterion across files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_cat2.errors import RulesError
from fhir_cat2.rules.loader import load_rules

from .support.tables import one_measure_table

MAIN = """\
version: 1
name: test rules
include: [measures/*.yaml]
library:
  office-visit:
    exists:
      resource: Encounter
      label: Office visit in the period
      codes: [cpt#99213]
      statuses: [finished]
      during: period
"""

SCREENED = """\
screened:
  exists: {resource: Observation, label: Falls screening, codes: [loinc#73830-2], during: period}
"""
OLDER_VISIT = """\
exists:
  like: office-visit
  label: An office visit at 65 or older
  as: visit
  where: {age: {min: 65, at: visit.start}}
"""


def measure_file(measure: str) -> str:
    """An included file: the library criterion ``screened`` and a measure of it."""
    return one_measure_table(
        "use: screened", initial_population=OLDER_VISIT, library=SCREENED, measure=measure, header=False
    )


def table(tmp_path: Path, **files: str) -> Path:
    (tmp_path / "measures").mkdir()
    (tmp_path / "rules.yaml").write_text(MAIN)
    for name, text in files.items():
        (tmp_path / "measures" / name).write_text(text)
    return tmp_path / "rules.yaml"


def test_included_measures_and_library_join_the_table(tmp_path):
    ruleset = load_rules(table(tmp_path, **{"a.yaml": measure_file("MIPS901")}))
    measure = ruleset.measure("MIPS901")
    assert "screened" in ruleset.table.library and "office-visit" in ruleset.table.library
    exists = measure.groups[0].populations["initial-population"].criteria.exists
    assert exists is not None and exists.resource == "Encounter" and exists.codes == ("cpt#99213",)
    assert exists.label == "An office visit at 65 or older" and exists.as_ == "visit"


def test_a_problem_in_an_included_file_names_that_file_and_line(tmp_path):
    broken = measure_file("MIPS901").replace("improvement_notation: increase", "improvement_notation: up")
    with pytest.raises(RulesError) as caught:
        load_rules(table(tmp_path, **{"a.yaml": broken}))
    text = str(caught.value)
    assert f"{tmp_path / 'measures' / 'a.yaml'}:7: measures[0].improvement_notation" in text, text


def test_a_library_criterion_defined_twice_is_refused(tmp_path):
    with pytest.raises(RulesError) as caught:
        load_rules(table(tmp_path, **{"a.yaml": measure_file("MIPS901"), "b.yaml": measure_file("MIPS902")}))
    assert f"{tmp_path / 'measures' / 'b.yaml'}:2: library.screened: already defined in" in str(caught.value)


def test_like_names_an_unknown_criterion(tmp_path):
    broken = measure_file("MIPS901").replace("like: office-visit", "like: office-vist")
    with pytest.raises(RulesError) as caught:
        load_rules(table(tmp_path, **{"a.yaml": broken}))
    assert "a.yaml:16: measures[0].groups[0].populations.initial-population.criteria.exists.like" in str(
        caught.value
    )
    assert "'office-vist' is not a library criterion that is an exists" in str(caught.value)


def test_an_include_that_matches_nothing_or_a_file_with_other_keys_is_refused(tmp_path):
    with pytest.raises(RulesError, match=r"include: no file matches 'measures/\*.yaml'"):
        load_rules(table(tmp_path))
    with pytest.raises(
        RulesError, match=r"an included file holds library, code_rules, measures only \(found version\)"
    ):
        load_rules(
            table(
                tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, **{"a.yaml": "version: 1\n"}
            )
        )


def test_the_shipped_table_includes_its_measure_files():
    ruleset = load_rules()
    assert {"CMS130", "MIPS047"} <= {m.id for m in ruleset.table.measures}
    ids = [m.id for m in ruleset.table.measures]
    assert ids.index("CMS130") < ids.index("MIPS047")  # file order: claims lines keep their order
