"""CMS124 cervical cancer screening (MIPS 309, CervicalCancerScreeningFHIR 0.0.001): what the generated
cases of tests/oracle/cms124.py cannot show: no claims codes, the summary report's counts, the explain trail
(report shape: tests/test_measure_reports_shape.py)."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text

from .conftest import coded_obs, encounter, patient, run_resources

URL = "https://madie.cms.gov/Measure/CervicalCancerScreeningFHIR"


def woman(birth: str = "1980-05-01", pid: str = "p1", eid: str = "e1"):
    return [patient(pid, birth=birth), encounter(eid, pid=pid)]


def hpv(when: str, pid: str = "p1"):
    return coded_obs("hpv", "59263-4", when, pid=pid, category="laboratory", value_code="260385009")


def test_mips309_is_not_claims_reportable(ruleset):
    """MIPS 309 has no rows in CMS's claims single-source files 2019-2025, and no HEDIS CPT II code: a
    screened woman earns no quality-data code."""
    run = run_resources([*woman(), hpv("2025-02-10T08:00:00Z")], ruleset, program="mips-claims")
    assert run.population("CMS124")["numerator"] is True
    assert run.measure_codes("CMS124") == []
    assert ruleset.measure("CMS124").groups[0].claims == ()


def test_individual_and_summary_reports(ruleset):
    """An individual report per patient; summary: 1 met of 2."""
    resources = [*woman(), hpv("2025-02-10T08:00:00Z"), *woman(pid="p2", eid="e2")]
    run = run_resources(resources, ruleset, report="both")
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    [summary] = [r for r in reports if r["type"] == "summary"]
    assert len([r for r in reports if r["type"] == "individual"]) == 2
    group = summary["group"][0]
    assert {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]} == {
        "initial-population": 2,
        "denominator": 2,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    assert group["measureScore"] == {"value": 0.5}


def test_explain_says_the_hpv_test_was_before_age_30(ruleset):
    """'HPV Test Within 5 Years for Women Age 30 and Older': the trail names the test and the age at it."""
    run = run_resources([*woman("1994-06-01"), hpv("2024-05-31T08:00:00Z")], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS124"], full=True)
    assert "NOT MET" in text
    assert "HPV test with a result in the period or the 4 years before, at age 30 or older" in text
    assert "age 29 on 2024-05-31" in text
