"""CMS771 (MIPS 476) urinary symptom score change 6-12 months after a BPH diagnosis
(UrinarySymptomScoreChangeAfterBenignProstaticHyperplasiaFHIR 1.4.000): the score change of 3 or more, the
AUA index scored with its same-day quality-of-life answer, the follow-up window, an exclusion;
MeasureReports, explain, and no quality-data codes. Populations are cross-checked with the reference engine
in tests/oracle/cms771.py."""

from __future__ import annotations

from .conftest import ICD10, run_resources
from .oracle.cms771 import AUASI, FIRST, FOLLOW, QOL, base, score, scored
from .oracle.heart import confirmed
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/UrinarySymptomScoreChangeAfterBenignProstaticHyperplasiaFHIR"


def test_an_improvement_of_3_is_met_and_reports_every_population(ruleset):
    run = run_resources(scored(18, 15), ruleset, report="both")
    assert run.population("CMS771") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exclusion": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|1.4.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_an_improvement_of_2_is_not(ruleset):
    assert run_resources(scored(18, 16), ruleset).outcome("CMS771") == "not-met"


def test_the_aua_index_counts_with_its_same_day_quality_of_life_answer(ruleset):
    first = [score("s1", 15, FIRST, code=AUASI), score("q1", 4, "2024-10-15T11:00:00Z", code=QOL)]
    assert run_resources([*base(), *first, score("s2", 16, FOLLOW)], ruleset).outcome("CMS771") == "met"
    alone = [*base(), score("s1", 15, FIRST, code=AUASI), score("s2", 10, FOLLOW)]
    run = run_resources(alone, ruleset)
    assert run.population("CMS771")["initial-population"] is True
    assert run.outcome("CMS771") == "not-met"


def test_follow_up_window_is_6_to_12_months(ruleset):
    def in_population(when):
        resources = [*base(), score("s1", 18, FIRST), score("s2", 12, when)]
        return run_resources(resources, ruleset).population("CMS771")["initial-population"]

    assert not in_population("2025-03-31T10:00:00Z")
    assert in_population("2025-04-01T10:00:00Z")
    assert in_population("2025-10-31T10:00:00Z")
    assert not in_population("2025-11-01T10:00:00Z")


def test_urinary_retention_within_a_year_excludes(ruleset):
    retention = confirmed("ur", "R33.9", system=ICD10, onset="2025-03-01T09:00:00Z")
    assert run_resources([*scored(), retention], ruleset).outcome("CMS771") == "excluded"


def test_no_quality_data_codes(ruleset):
    assert run_resources(scored(), ruleset, program="mips-claims").measure_codes("CMS771") == []


def test_explain_shows_both_scores_and_the_change(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS771", scored())
    assert "CMS771 / MIPS 476" in text
    assert "Observation/s1 scores 18" in text and "Observation/s2 scores 12" in text
    assert "change 6" in text
