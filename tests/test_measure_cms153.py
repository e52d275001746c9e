"""CMS153 chlamydia screening in women (MIPS 310, ChlamydiaScreeninginWomenFHIR 0.1.000): what the generated
cases of tests/oracle/cms153.py cannot show: no claims codes, the summary report's counts in its two
age strata, the explain trail of the pregnancy-test exclusion."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text

from .conftest import LOINC, coded_obs, encounter, patient, request, run_resources
from .support.reports import counts_of, strata_of, summary_of

URL = "https://madie.cms.gov/Measure/ChlamydiaScreeninginWomenFHIR"
YOUNGER, OLDER = "fd1b6c30-f3d6-422e-9063-5db3590db24c", "90321b13-ef34-437a-a79e-0bf9e24e87f8"


def woman(birth: str = "2005-05-01", pid: str = "p1", eid: str = "e1"):
    return [patient(pid, birth=birth), encounter(eid, pid=pid)]


def order(rid: str, code: str, authored: str = "2025-03-04T09:25:00Z", pid: str = "p1"):
    return request("ServiceRequest", f"{pid}-{rid}", code, authored, pid=pid, system=LOINC)


def chlamydia_test(pid: str = "p1"):
    return coded_obs(f"{pid}-ct", "21613-5", pid=pid, category="laboratory", value_code="260385009")


def test_mips310_is_not_claims_reportable(ruleset):
    """MIPS 310 has no rows in CMS's claims single-source files 2019-2025 and no HEDIS CPT II code."""
    resources = [*woman(), order("sti", "5292-8"), chlamydia_test()]
    run = run_resources(resources, ruleset, program="mips-claims")
    assert run.population("CMS153")["numerator"] is True
    assert run.measure_codes("CMS153") == []
    assert ruleset.measure("CMS153").groups[0].claims == ()


def test_summary_report_counts_each_age_stratum(ruleset):
    """Screened at 20 (stratum 16-20), excluded at 22 (pregnancy test then x-ray; stratum 21-24): each
    stratum counts its own populations and score."""
    resources = [
        *woman(),
        order("sti", "5292-8"),
        chlamydia_test(),
        *woman("2003-05-01", pid="p2", eid="e2"),
        order("preg", "2106-3", "2025-05-01T10:00:00Z", pid="p2"),
        order("xr", "36643-5", "2025-05-07T08:00:00Z", pid="p2"),
    ]
    run = run_resources(resources, ruleset, report="both", measures=("CMS153",))
    [group] = summary_of(run, URL)["group"]
    counts = counts_of(group["population"])
    assert counts == {
        "initial-population": 2,
        "denominator": 2,
        "denominator-exclusion": 1,
        "numerator": 1,
    }
    assert group["measureScore"] == {"value": 1.0}
    strata = strata_of(group)
    assert strata == {
        YOUNGER: {"initial-population": 1, "denominator": 1, "denominator-exclusion": 0, "numerator": 1},
        OLDER: {"initial-population": 1, "denominator": 1, "denominator-exclusion": 1, "numerator": 0},
    }


def test_explain_names_the_xray_after_the_pregnancy_test(ruleset):
    resources = [
        *woman(),
        order("preg", "2106-3", "2025-05-01T10:00:00Z"),
        order("xr", "36643-5", "2025-05-07T08:00:00Z"),
    ]
    run = run_resources(resources, ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS153"], full=True)
    assert "EXCLUDED" in text
    assert "Pregnancy test then an x-ray or isotretinoin, and no other sign of sexual activity" in text
    assert "X-ray study ordered (active or completed) 0-6 days after the pregnancy test order" in text
    assert "ServiceRequest/p1-xr: code 36643-5, status active, 2025-05-07" in text
