"""``exists: {is: NAME}`` tests the bound resource itself (an episode's own type, reason or diagnosis), not
another resource of the same time; populations are judged in order, an exception after the numerator."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_cat2.errors import RulesError
from fhir_cat2.rules.loader import RuleSet

from .conftest import ICD10, encounter, patient, run_resources
from .support.tables import load_table, one_measure_table

EPISODE_MEASURE = """\
url: https://example.org/Measure/Test
version: 0.0.1
basis: encounter
episode:
  {resource: Encounter, label: Visit, codes: [cpt#99213, cpt#99214], during: period}
"""
FOR_MDD = 'exists:\n  {resource: Encounter, is: encounter, label: For MDD, reason_codes: ["icd10cm#F32.1"]}'


def table(tmp_path: Path, ip: str) -> RuleSet:
    return load_table(
        tmp_path,
        one_measure_table(FOR_MDD, initial_population=ip, measure="CMS901", measure_keys=EPISODE_MEASURE),
    )


def with_reason(resource: dict, code: str) -> dict:
    resource["reasonCode"] = [{"coding": [{"system": ICD10, "code": code}]}]
    return resource


def test_is_tests_the_episode_itself_not_another_encounter_of_the_same_time(tmp_path):
    ruleset = table(
        tmp_path, "{exists: {resource: Encounter, is: encounter, label: A 99214 visit, codes: [cpt#99214]}}"
    )
    same_time = "2025-03-04T09:00:00Z"
    run = run_resources(
        [
            patient(),
            with_reason(encounter("a", same_time, cpt="99213"), "F32.1"),
            with_reason(encounter("b", same_time, cpt="99214"), "F41.1"),
        ],
        ruleset,
    )
    result = run.result("CMS901")
    by_episode = {
        e.encounter_ref: {p.code: p.member for p in e.groups[0].populations} for e in result.episodes
    }
    assert by_episode["Encounter/a"]["initial-population"] is False  # a 99213 visit
    assert by_episode["Encounter/b"]["initial-population"] is True
    assert by_episode["Encounter/b"]["numerator"] is False  # its own reason is anxiety, not the other's
    assert run.counts("CMS901") == {"initial-population": 1, "denominator": 1, "numerator": 0}


def test_is_needs_a_bound_name(tmp_path):
    with pytest.raises(RulesError) as caught:
        table(tmp_path, "{exists: {resource: Encounter, is: visit, label: Unbound, codes: [cpt#99214]}}")
    assert "date anchor 'visit' is not bound here" in str(caught.value)
