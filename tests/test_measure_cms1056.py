"""CMS1056 (MIPS 494) excessive radiation dose or inadequate image quality for diagnostic CT in adults
(AlaraCTClinicalFHIR 0.4.000, inverse): the CT result's components and its category's thresholds, the
full-body exclusion, the age at the period's start as the CQL's DateTime age runs; MeasureReports, explain,
and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms1056.py."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms1056 import CHEST_LOW, FULL_BODY, HEAD_HIGH, adult, ct_scan
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/AlaraCTClinicalFHIR"


def test_a_scan_over_its_threshold_is_in_the_numerator_and_reports_every_population(ruleset):
    run = run_resources([adult(), ct_scan(noise=29)], ruleset, report="both")
    assert run.population("CMS1056") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exclusion": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.4.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_each_category_has_its_own_thresholds(ruleset):
    def numerator(scan) -> bool:
        return run_resources([adult(), scan], ruleset).population("CMS1056")["numerator"]

    assert numerator(ct_scan(noise=28.9, dose=643.9)) is False
    assert numerator(ct_scan(dose=644)) is True
    assert numerator(ct_scan(HEAD_HIGH, noise=114, dose=1831)) is False
    assert numerator(ct_scan(HEAD_HIGH, noise=115, dose=100)) is True
    assert numerator(ct_scan(CHEST_LOW, noise=10, dose=377)) is True
    assert numerator(ct_scan(noise=40, display=None)) is False  # CQL Code equality needs the display


def test_values_are_needed_for_the_denominator_and_full_body_excludes(ruleset):
    run = run_resources([adult(), ct_scan(dose=None)], ruleset)
    assert run.population("CMS1056")["initial-population"] is True
    assert run.population("CMS1056")["denominator"] is False
    excluded = run_resources([adult(), ct_scan(FULL_BODY, noise=10, dose=100)], ruleset)
    assert excluded.population("CMS1056")["denominator-exclusion"] is True


def test_age_at_the_period_start_as_a_datetime(ruleset):
    def in_population(birth: str) -> bool:
        return run_resources([adult(birth), ct_scan()], ruleset).population("CMS1056")["initial-population"]

    assert in_population("2006-12-31") is True
    assert in_population("2007-01-01") is False  # 18 that very day: uncertain in the CQL, so not counted


def test_no_quality_data_codes(ruleset):
    resources = [adult(), ct_scan(noise=40)]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS1056") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS1056") == []


def test_explain_names_the_scan_and_its_values(tmp_path, capsys):
    resources = [adult(), ct_scan()]
    text = explain_text(tmp_path, capsys, "CMS1056", resources)
    assert "CMS1056 / MIPS 494" in text
    assert "Observation/ct" in text
    assert "noise 20, size_adjusted_dose 500: no row of the table holds" in text
