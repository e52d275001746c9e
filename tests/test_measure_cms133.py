"""CMS133 (MIPS 191) cataracts: 20/40 visual acuity within 90 days. Population basis Procedure: each
cataract surgery is an episode, with the anchor ``procedure`` bound to it."""

from __future__ import annotations

import pytest

from fhir_cat2.errors import RulesError
from fhir_cat2.rules.loader import load_rules

from .conftest import CPT, SNOMED, coded_obs, patient, procedure, run_resources


def surgeries():
    return [
        patient(birth="1955-05-01"),
        procedure("s1", "66984", "2025-03-04T10:00:00Z", system=CPT),
        coded_obs(
            "va",
            "79880-1",
            "2025-04-03T09:00:00Z",
            value_code="422497000",
            value_system=SNOMED,
            category="exam",
        ),
        procedure("s2", "66984", "2025-08-04T10:00:00Z", system=CPT),
    ]


def test_each_surgery_is_an_episode_with_its_own_outcome(ruleset):
    run = run_resources(surgeries(), ruleset, measures=("CMS133",))
    result = run.result("CMS133")
    assert [(e.encounter_ref, e.groups[0].outcome()) for e in result.episodes] == [
        ("Procedure/s1", "met"),
        ("Procedure/s2", "not-met"),
    ]
    assert run.counts("CMS133") == {
        "initial-population": 2,
        "denominator": 2,
        "denominator-exclusion": 0,
        "numerator": 1,
    }


def test_the_individual_report_counts_episodes(ruleset):
    (report,) = run_resources(surgeries(), ruleset, measures=("CMS133",)).reports
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert counts == {"initial-population": 2, "denominator": 2, "denominator-exclusion": 0, "numerator": 1}
    assert {"reference": "Procedure/s1"} in report["evaluatedResource"]


def test_no_claims_codes_for_an_ehr_and_registry_measure(ruleset):
    run = run_resources(surgeries(), ruleset, program="mips-claims", measures=("CMS133",))
    assert run.measure_codes("CMS133") == []


def test_an_episode_anchor_outside_an_episode_measure_is_refused(tmp_path):
    """A library criterion may read ``procedure``; a patient-based measure that uses it is refused."""
    table = """\
version: 1
name: anchors
library:
  after-surgery:
    exists:
      resource: Observation
      label: Exam after surgery
      codes: [loinc#79880-1]
      starts_during: [procedure.end, procedure.end+90d]
measures:
  - id: CMS901
    title: Test
    url: https://example.org/Measure/test
    version: 0.0.1
    improvement_notation: increase
    source: test
    groups:
      - id: g
        populations:
          initial-population: {id: ip, criteria: {age: {min: 18}}}
          denominator: {id: den, criteria: {population: initial-population}}
          numerator: {id: num, criteria: {use: after-surgery}}
"""
    (tmp_path / "rules.yaml").write_text(table)
    with pytest.raises(RulesError, match="date anchor 'procedure' is not bound"):
        load_rules(tmp_path / "rules.yaml")
