"""CMS74 primary caries prevention offered by dentists (MIPS 379,
PrimaryCariesPreventionasOfferedbyDentistsFHIR 0.0.002): what the generated cases of tests/oracle/cms74.py
cannot show: no claims codes, the summary report's counts in its three age strata, the explain trail of two
applications on one day."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text

from .conftest import encounter, patient, procedure, run_resources
from .support.reports import counts_of, reports_of, strata_of, summary_of

URL = "https://madie.cms.gov/Measure/PrimaryCariesPreventionasOfferedbyDentistsFHIR"
CDT = "http://www.ada.org/cdt"
STRATA = (
    "b4b470c5-adca-4b31-bd80-9717d6ebfe87",  # 1-5
    "d7c07980-4cab-4f35-a00b-216b17f3f08c",  # 6-12
    "d7a5caa5-6309-4572-b76a-e5c1ca50b0cb",  # 13-20
)


def child(birth: str = "2017-05-01", pid: str = "p1"):
    return [patient(pid, birth=birth), encounter(f"{pid}-e1", pid=pid, cpt="D0120", system=CDT)]


def varnish(when: str, pid: str = "p1", rid: str = "fv"):
    return procedure(f"{pid}-{rid}", "D1206", when, pid=pid, system=CDT)


def twice(pid: str = "p1"):
    return [varnish("2025-03-04T09:30:00Z", pid, "fv1"), varnish("2025-09-10T14:00:00Z", pid, "fv2")]


def test_mips379_is_not_claims_reportable(ruleset):
    """MIPS 379 has no rows in CMS's claims single-source files 2019-2025 and no HEDIS CPT II code."""
    run = run_resources([*child(), *twice()], ruleset, program="mips-claims")
    assert run.population("CMS74")["numerator"] is True
    assert run.measure_codes("CMS74") == []
    assert ruleset.measure("CMS74").groups[0].claims == ()


def test_summary_report_counts_each_age_stratum(ruleset):
    """Ages 5 and 6 at the start of the period fall in the first and second strata, 13 in the third; the
    6-year-old had varnish twice."""
    resources = [
        *child("2019-01-02", "p1"),  # 5 on 1 January 2025
        *child("2019-01-01", "p2"),  # 6 on 1 January 2025
        *twice("p2"),
        *child("2011-06-01", "p3"),  # 13
        varnish("2025-03-04T09:30:00Z", "p3"),
    ]
    run = run_resources(resources, ruleset, report="both", measures=("CMS74",))
    reports = reports_of(run, URL)
    assert len([r for r in reports if r["type"] == "individual"]) == 3
    [group] = summary_of(run, URL)["group"]
    assert counts_of(group["population"]) == {
        "initial-population": 3,
        "denominator": 3,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    strata = strata_of(group)
    assert [strata[i]["initial-population"] for i in STRATA] == [1, 1, 1]
    assert [strata[i]["numerator"] for i in STRATA] == [0, 1, 0]


def test_explain_says_two_different_days_are_needed(ruleset):
    resources = [
        *child(),
        varnish("2025-03-04T09:30:00Z", rid="fv1"),
        varnish("2025-03-04T15:00:00Z", rid="fv2"),
    ]
    run = run_resources(resources, ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS74"], full=True)
    assert "NOT MET" in text
    assert "Fluoride varnish applied on two different days in the period" in text
    assert "2 different days needed" in text
