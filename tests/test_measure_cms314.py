"""CMS314 (MIPS 338) HIV viral suppression (HIVViralSuppressionFHIR 0.1.000): the last viral load of the
period decides; individual and summary MeasureReports, explain, and no quality-data codes. Populations are
cross-checked with the reference engine in tests/oracle/cms314.py."""

from __future__ import annotations

from .conftest import encounter, patient, run_resources
from .oracle.cms314 import in_care
from .oracle.hiv import NOT_DETECTED, hiv, viral_load
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/HIVViralSuppressionFHIR"


def test_last_viral_load_below_200_is_met(ruleset):
    run = run_resources_both([*in_care(), viral_load(value=199)], ruleset)
    assert run.population("CMS314") == {"initial-population": True, "denominator": True, "numerator": True}
    [individual] = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000" and r["type"] == "individual"]
    codes = [p["code"]["coding"][0]["code"] for p in individual["group"][0]["population"]]
    assert codes == ["initial-population", "denominator", "numerator"]


def test_summary_counts_two_patients(ruleset):
    second = [
        patient("p2", birth="1975-01-01", gender="female"),
        {**hiv(), "id": "hiv2", "subject": {"reference": "Patient/p2"}},
        encounter("e2", "2025-04-01T09:00:00Z", pid="p2"),
        {**viral_load("vl2", 1200), "subject": {"reference": "Patient/p2"}},
    ]
    run = run_resources_both([*in_care(), viral_load(), *second], ruleset, report="summary")
    [summary] = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000" and r["type"] == "summary"]
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in summary["group"][0]["population"]}
    assert counts == {"initial-population": 2, "denominator": 2, "numerator": 1}
    assert summary["group"][0]["measureScore"] == {"value": 0.5}


def test_the_last_result_decides_not_any(ruleset):
    low_then_high = [
        viral_load("a", 40, "2025-02-01T10:00:00Z"),
        viral_load("b", 900, "2025-10-01T10:00:00Z"),
    ]
    assert run_resources_both([*in_care(), *low_then_high], ruleset).outcome("CMS314") == "not-met"
    high_then_none = [viral_load("a", 900, "2025-02-01T10:00:00Z"), viral_load("b", coded=NOT_DETECTED)]
    assert run_resources_both([*in_care(), *high_then_none], ruleset).outcome("CMS314") == "met"


def test_no_quality_data_codes(ruleset):
    resources = [*in_care(), viral_load()]
    assert run_resources_both(resources, ruleset, program="mips-claims").measure_codes("CMS314") == []
    assert run_resources_both(resources, ruleset, program="hedis").measure_codes("CMS314") == []


def test_explain_names_the_last_viral_load(tmp_path, capsys):
    resources = [*in_care(), viral_load("vl1", 40, "2025-02-01T10:00:00Z"), viral_load("vl2", 900)]
    text = explain_text(tmp_path, capsys, "CMS314", resources)
    assert "CMS314 / MIPS 338" in text
    assert "HIV diagnosis starting before day 91 of the period" in text
    assert "1 not the latest; 1 value 900 passes none of the value tests" in text


def run_resources_both(resources, ruleset, **kw):
    kw.setdefault("report", "both")
    return run_resources(resources, ruleset, **kw)
