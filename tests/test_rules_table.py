"""The rules table: the shipped one is valid, and a bad one is refused naming file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fhir_cat2.cli import main
from fhir_cat2.errors import RulesError
from fhir_cat2.rules.base import Band
from fhir_cat2.rules.loader import load_rules

GOOD_RULE = """\
version: 1
name: test
measurements:
  systolic_bp:
    label: SBP
    codes: [loinc#8480-6]
    unit: mm[Hg]
    units:
      mm[Hg]: {factor: 1}
    source: test
code_rules:
  - id: low
    code: 3074F
    label: low
    programs: [hedis]
    years: 2024-2025
    measurement: systolic_bp
    band: {lt: 130}
    source: test
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    return info.value.problems


def test_shipped_table_is_valid():
    ruleset = load_rules()
    assert {m.id for m in ruleset.table.measures} >= {"CMS165", "CMS122"}
    assert ruleset.code_rules("hedis", 2025)


def test_a_minimal_table_loads(tmp_path):
    ruleset = load_rules(_write(tmp_path, GOOD_RULE))
    assert [r.code for r in ruleset.code_rules("hedis", 2025)] == ["3074F"]
    assert ruleset.code_rules("hedis", 2023) == []


def test_wrong_type_names_file_line_and_field(tmp_path):
    text = GOOD_RULE.replace("band: {lt: 130}", "band: {lt: high}")
    [problem] = _problems(tmp_path, text)
    assert f"rules.yaml:{line_of(text, 'band:')}: code_rules[0].band.lt: " in problem, problem


def test_unknown_field_is_refused(tmp_path):
    text = GOOD_RULE.replace("    source: test\n", "    source: test\n    colour: red\n", 2)
    problems = _problems(tmp_path, text)
    line = line_of(text, "colour", 2)
    assert any(f":{line}: code_rules[0].colour: Extra inputs are not permitted" in p for p in problems), (
        problems
    )


def test_bad_code_and_years(tmp_path):
    text = GOOD_RULE.replace("code: 3074F", "code: 3074").replace("years: 2024-2025", "years: 2025-2024")
    problems = _problems(tmp_path, text)
    code_line, years_line = line_of(text, "code: 3074"), line_of(text, "years:")
    assert any(f":{code_line}: code_rules[0].code:" in p and "not a CPT II" in p for p in problems), problems
    assert any(f":{years_line}: code_rules[0].years:" in p and "ends before it starts" in p for p in problems)


def test_unknown_measurement_and_value_set(tmp_path):
    text = GOOD_RULE.replace("measurement: systolic_bp", "measurement: sbp").replace(
        "codes: [loinc#8480-6]", "codes: [loinc#8480-6]\n    valuesets: [1.2.3.4]"
    )
    problems = _problems(tmp_path, text)
    assert any("code_rules[0].measurement: unknown measurement 'sbp'" in p for p in problems), problems
    assert any(
        "measurements.systolic_bp.valuesets[0]: value set '1.2.3.4' is not known" in p for p in problems
    )


def test_overlapping_bands_are_refused(tmp_path):
    text = GOOD_RULE + GOOD_RULE.split("code_rules:\n")[1].replace("id: low", "id: mid").replace(
        "band: {lt: 130}", "band: {ge: 129, lt: 140}"
    ).replace("code: 3074F", "code: 3075F")
    [problem] = _problems(tmp_path, text)
    assert "overlaps band < 130 of 'low'" in problem
    assert f":{line_of(text, 'band:', 2)}: code_rules[1].band" in problem


def test_yaml_syntax_error_names_the_line(tmp_path):
    [problem] = _problems(tmp_path, GOOD_RULE + "  - id: [unclosed\n")
    assert re.search(r"rules\.yaml:\d+: YAML syntax", problem)


@pytest.mark.parametrize(
    ("band", "inside", "outside"),
    [
        (Band(lt=130), [129.99], [130]),
        (Band(ge=130, lt=140), [130, 139.9], [129.9, 140]),
        (Band(ge=8.0, le=9.0), [8.0, 9.0], [7.99, 9.01]),
        (Band(gt=9.0), [9.01], [9.0]),
    ],
)
def test_band_edges(band, inside, outside):
    assert all(band.contains(v) for v in inside)
    assert not any(band.contains(v) for v in outside)


def test_rules_check_command(tmp_path, capsys):
    assert main(["rules", "check", str(_write(tmp_path, GOOD_RULE))]) == 0
    assert "OK: 1 measurements, 1 code rules" in capsys.readouterr().out
    bad = _write(tmp_path, GOOD_RULE.replace("code: 3074F", "code: nope"))
    assert main(["rules", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"rules.yaml:{line_of(GOOD_RULE, 'code: 3074F')}: code_rules[0].code" in err


def test_replay_refuses_a_bad_rules_table_before_any_work(tmp_path, capsys):
    bad = _write(tmp_path, GOOD_RULE.replace("programs: [hedis]", "programs: [medicaid]"))
    out = tmp_path / "out"
    assert main(["replay", str(tmp_path), "--out", str(out), "--rules", str(bad)]) == 2
    assert not out.exists()
    assert "code_rules[0].programs[0]" in capsys.readouterr().err


def test_no_ama_descriptor_text_in_labels():
    """Labels are our own short words (licensing, domain.md §1.6): short, and no long descriptor prose."""
    for rule in load_rules().table.code_rules:
        assert len(rule.label) <= 60, rule.id
        assert "evaluation and management" not in rule.label.lower()


CRITERION_RULE = (
    GOOD_RULE
    + """\
  - id: colonoscopy
    code: 3017F
    label: screening
    programs: [hedis]
    years: 2025
    when:
      exists:
        resource: Procedure
        codes: [cpt#45378]
        ends_during: [period.start-9y, encounter.end]
    source: test
"""
)


def test_a_code_rule_may_trigger_on_a_criterion_with_encounter_anchors(tmp_path):
    ruleset = load_rules(_write(tmp_path, CRITERION_RULE))
    [rule] = [r for r in ruleset.table.code_rules if r.id == "colonoscopy"]
    assert rule.when is not None and rule.when.exists.ends_during.end.anchor == "encounter"


def test_unbound_date_anchor_names_file_line_and_field(tmp_path):
    """A date anchor no enclosing exists binds (here 'visit') is refused with its location."""
    text = CRITERION_RULE.replace("encounter.end]", "visit.end]")
    [problem] = _problems(tmp_path, text)
    assert (
        f"rules.yaml:{line_of(text, 'when:')}: code_rules[1].when: date anchor 'visit' is not bound"
        in problem
    )


def test_encounter_anchor_is_refused_in_a_patient_based_population(tmp_path):
    text = (
        GOOD_RULE
        + """\
measures:
  - id: CMS1
    title: t
    improvement_notation: increase
    source: test
    groups:
      - id: g
        populations:
          initial-population: {id: ip, criteria: {age: {min: 18, at: encounter.start}}}
          denominator: {id: d, criteria: {population: initial-population}}
          numerator: {id: n, criteria: {population: initial-population}}
"""
    )
    [problem] = _problems(tmp_path, text)
    assert "populations.initial-population.criteria: date anchor 'encounter' is not bound" in problem


def test_bad_claims_code_and_overlapping_years_are_refused(tmp_path):
    text = (
        GOOD_RULE
        + """\
measures:
  - id: CMS1
    mips: "001"
    title: t
    improvement_notation: increase
    source: test
    groups:
      - id: g
        populations:
          initial-population: {id: ip, criteria: {age: {min: 18}}}
          denominator: {id: d, criteria: {population: initial-population}}
          numerator: {id: n, criteria: {population: initial-population}}
        claims:
          - years: 2024-2025
            source: s
            met: [{codes: [G8752], label: ok}]
          - years: 2025
            source: s
            met: [{codes: [G875], label: bad}]
"""
    )
    problems = _problems(tmp_path, text)
    assert any("claims[1].met[0].codes" in p and "not a quality-data code" in p for p in problems), problems
    text = text.replace("codes: [G875]", "codes: [G8753]")
    [problem] = _problems(tmp_path, text)
    assert "claims[1].years: years [2025] are already covered by another claims entry" in problem


def test_value_test_needs_codes_or_a_band(tmp_path):
    text = CRITERION_RULE.replace(
        "        codes: [cpt#45378]\n",
        "        codes: [cpt#45378]\n        value_tests: [{for_codes: [loinc#1-1]}]\n",
    )
    [problem] = _problems(tmp_path, text)
    assert "value_tests[0]: a value test needs codes, valuesets or band" in problem
