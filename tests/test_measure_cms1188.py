"""CMS1188 (MIPS 205) STI testing for people with HIV (HIVSTITestingFHIR 0.2.000): chlamydia, gonorrhea and
syphilis each tested with a result; individual and summary MeasureReports, explain, and no quality-data
codes. Populations are cross-checked with the reference engine in tests/oracle/cms1188.py."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms1188 import in_care
from .oracle.hiv import CHLAMYDIA, GONORRHEA, SYPHILIS, sti_panel, sti_test
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/HIVSTITestingFHIR"


def test_all_three_tests_are_met(ruleset):
    run = run_resources([*in_care(), *sti_panel()], ruleset, report="both")
    assert run.population("CMS1188") == {"initial-population": True, "denominator": True, "numerator": True}
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.2.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]
    [summary] = [r for r in reports if r["type"] == "summary"]
    assert summary["group"][0]["measureScore"] == {"value": 1.0}


def test_each_infection_is_needed(ruleset):
    for missing in (CHLAMYDIA, GONORRHEA, SYPHILIS):
        tests = [sti_test(code, code) for code in (CHLAMYDIA, GONORRHEA, SYPHILIS) if code != missing]
        assert run_resources([*in_care(), *tests], ruleset).outcome("CMS1188") == "not-met", missing


def test_no_quality_data_codes(ruleset):
    resources = [*in_care(), *sti_panel()]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS1188") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS1188") == []


def test_explain_says_which_test_is_missing(tmp_path, capsys):
    resources = [*in_care(), *sti_panel()[:2], sti_test("syph", SYPHILIS, result=None)]
    text = explain_text(tmp_path, capsys, "CMS1188", resources)
    assert "CMS1188 / MIPS 205" in text
    assert "Syphilis test with a result in the period" in text
    assert "has no value" in text
