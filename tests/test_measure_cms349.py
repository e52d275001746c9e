"""CMS349 HIV screening (MIPS 475, HIVScreeningFHIR 0.2.000): what the generated cases of
tests/oracle/cms349.py cannot show: no claims codes, the summary report's counts, the explain trail
(report shape: tests/test_measure_reports_shape.py)."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text

from .conftest import coded_obs, encounter, patient, run_resources

URL = "https://madie.cms.gov/Measure/HIVScreeningFHIR"


def adult(birth: str = "1985-05-01", pid: str = "p1", eid: str = "e1"):
    return [patient(pid, birth=birth), encounter(eid, pid=pid)]


def hiv_test(when: str, pid: str = "p1"):
    return coded_obs("hiv", "56888-1", when, pid=pid, category="laboratory", value_code="260385009")


def test_mips475_is_not_claims_reportable(ruleset):
    """MIPS 475 has no rows in CMS's claims single-source files 2019-2025 and no HEDIS CPT II code: a
    screened patient earns no quality-data code."""
    run = run_resources([*adult(), hiv_test("2025-03-04T09:10:00Z")], ruleset, program="mips-claims")
    assert run.population("CMS349")["numerator"] is True
    assert run.measure_codes("CMS349") == []
    assert ruleset.measure("CMS349").groups[0].claims == ()


def test_individual_and_summary_reports(ruleset):
    """No denominator-exception population (the Measure has none, though the CQL defines one);
    summary: 1 met of 2."""
    resources = [*adult(), hiv_test("2012-02-10T08:00:00Z"), *adult(pid="p2", eid="e2")]
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


def test_explain_says_the_test_was_after_age_65(ruleset):
    """'AgeInYearsAt(date from start of HIVTest.effective) in Interval[15, 65]': the trail names the age
    on the test day."""
    run = run_resources([*adult("1959-06-01"), hiv_test("2025-07-01T09:00:00Z")], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS349"], full=True)
    assert "NOT MET" in text
    assert "Age 15-65 on the day of the test" in text
    assert "age 66 on 2025-07-01" in text
