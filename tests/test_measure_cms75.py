"""CMS75 children who have dental decay or cavities (MIPS 378, ChildrenWhoHaveDentalDecayOrCavitiesFHIR
0.0.001, an inverse measure): what the generated cases of tests/oracle/cms75.py cannot show: no claims codes,
the summary report's counts, CDT visits sent by OID, the explain trail."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text

from .conftest import ICD10, condition, encounter, patient, run_resources

URL = "https://madie.cms.gov/Measure/ChildrenWhoHaveDentalDecayOrCavitiesFHIR"
CDT = "http://www.ada.org/cdt"


def child(birth: str = "2017-05-01", pid: str = "p1", eid: str = "e1", system: str = CDT):
    return [patient(pid, birth=birth), encounter(eid, pid=pid, cpt="D0120", system=system)]


def caries(pid: str = "p1", **kw):
    return condition(f"{pid}-caries", "K02.52", pid=pid, system=ICD10, **kw)


def test_mips378_is_not_claims_reportable(ruleset):
    """MIPS 378 has no rows in CMS's claims single-source files 2019-2025 and no HEDIS CPT II code."""
    run = run_resources([*child(), caries(onset="2025-03-04")], ruleset, program="mips-claims")
    assert run.population("CMS75")["numerator"] is True
    assert run.measure_codes("CMS75") == []
    assert ruleset.measure("CMS75").groups[0].claims == ()


def test_individual_and_summary_reports_of_an_inverse_measure(ruleset):
    """An individual report per child; summary: 1 with caries of 2 (fewer is better: improvement
    notation 'decrease', checked in tests/test_measure_reports_shape.py)."""
    resources = [*child(), caries(onset="2025-03-04"), *child(pid="p2", eid="e2")]
    run = run_resources(resources, ruleset, report="both", measures=("CMS75",))
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    assert len([r for r in reports if r["type"] == "individual"]) == 2
    [summary] = [r for r in reports if r["type"] == "summary"]
    [group] = summary["group"]
    assert {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]} == {
        "initial-population": 2,
        "denominator": 2,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    assert group["measureScore"] == {"value": 0.5}


def test_an_oral_evaluation_sent_under_the_cdt_oid_qualifies(ruleset):
    """CDT's OID (urn:oid:2.16.840.1.113883.6.13) is read as the CDT URI the value set lists (the CQL
    compares systems exactly: the reference engine would not count it, so this is no generated case)."""
    run = run_resources(child(system="urn:oid:2.16.840.1.113883.6.13"), ruleset, measures=("CMS75",))
    assert run.population("CMS75")["initial-population"] is True


def test_explain_names_the_caries_that_ended_before_the_period(ruleset):
    resources = [*child(), caries(onset="2023-01-10", status="resolved", abatement="2024-06-01")]
    run = run_resources(resources, ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS75"], full=True)
    assert "inverse measure: the numerator is the poor outcome" in text
    assert "no matching Condition overlaps 2025-01-01..2025-12-31 (with a matching code: 1 outside" in text


def test_inverse_care_gap_is_open_with_caries_and_names_the_diagnosis(ruleset):
    """CMS75 is inverse: a child with caries has the open gap; the words name the diagnosis's date and say a
    diagnosis in the year cannot be undone."""
    from datetime import date

    from fhir_cat2.measures.gaps import CLOSED, OPEN, care_gaps

    end = date(2025, 12, 31)
    with_caries = run_resources([*child(), caries(onset="2025-03-04")], ruleset, measures=("CMS75",))
    [gap] = care_gaps(ruleset.measure("CMS75"), with_caries.result("CMS75"), end)
    assert gap.status == OPEN
    assert gap.close.startswith("dental caries ") and "2025-03-04" in gap.close
    assert gap.close.endswith(
        "a diagnosis in the year cannot be undone: treat the caries and offer prevention (fluoride varnish)"
    )
    without = run_resources(child(), ruleset, measures=("CMS75",))
    [gap] = care_gaps(ruleset.measure("CMS75"), without.result("CMS75"), end)
    assert (gap.status, gap.need) == (CLOSED, "no dental decay or cavities")
