"""CMS143 POAG optic nerve evaluation (MIPS 012, POAGOpticNerveEvaluationFHIR 0.1.000): what the generated
cases of tests/oracle/cms143.py cannot show: claims codes per year, the summary report's counts, the
explain trail."""

from __future__ import annotations

import pytest

from fhir_cat2.explain import outcome_to_text

from .conftest import ICD10, coded_obs, condition, encounter, not_done_obs, patient, run_resources

URL = "https://madie.cms.gov/Measure/POAGOpticNerveEvaluationFHIR"


def glaucoma_visit(year: int = 2025, pid: str = "p1"):
    return [
        patient(pid, birth="1955-05-01"),
        condition(f"{pid}-poag", "H40.1131", pid=pid, system=ICD10, onset="2015-01-01"),
        encounter(f"{pid}-e1", f"{year}-03-04T09:00:00Z", pid=pid, end=f"{year}-03-04T09:30:00Z"),
    ]


def exams(year: int = 2025, pid: str = "p1"):
    return [
        coded_obs(f"{pid}-cd", "71484-0", f"{year}-03-04T09:10:00Z", pid=pid, category="exam", value=0.4),
        coded_obs(
            f"{pid}-od", "71486-5", f"{year}-03-04T09:12:00Z", pid=pid, category="exam", value_code="17621005"
        ),
    ]


def medical_reason(year: int = 2025, pid: str = "p1"):
    return not_done_obs(f"{pid}-nd", "71484-0", "183932001", f"{year}-03-04T09:10:00Z", pid=pid)


@pytest.mark.parametrize("year", [2019, 2020])
def test_mips012_codes_2019_2020(ruleset, year):
    """MIPS 012 (claims single source 2019-2020): 2027F met, 2027F-8P not met, 2027F-1P medical reason."""
    claims = {"period": year, "program": "mips-claims"}
    met = run_resources([*glaucoma_visit(year), *exams(year)], ruleset, **claims)
    assert met.measure_codes("CMS143", "p1-e1") == ["2027F"]
    not_met = run_resources(glaucoma_visit(year), ruleset, **claims)
    assert not_met.measure_codes("CMS143", "p1-e1") == ["2027F-8P"]
    exception = run_resources([*glaucoma_visit(year), medical_reason(year)], ruleset, **claims)
    assert exception.measure_codes("CMS143", "p1-e1") == ["2027F-1P"]


@pytest.mark.parametrize("year", [2021, 2025])
def test_mips012_reports_nothing_from_2021(ruleset, year):
    """012 is EHR-only from 2021: no claims rows, no codes."""
    run = run_resources([*glaucoma_visit(year), *exams(year)], ruleset, period=year, program="mips-claims")
    assert run.population("CMS143")["numerator"] is True
    assert run.measure_codes("CMS143") == []


def test_individual_and_summary_reports(ruleset):
    """Summary: 3 in the denominator, 1 exception, 1 met: score 1 / (3 - 1)."""
    resources = [
        *glaucoma_visit(),
        *exams(),
        *glaucoma_visit(pid="p2"),
        *glaucoma_visit(pid="p3"),
        medical_reason(pid="p3"),
    ]
    run = run_resources(resources, ruleset, report="both")
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    [summary] = [r for r in reports if r["type"] == "summary"]
    group = summary["group"][0]
    assert {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]} == {
        "initial-population": 3,
        "denominator": 3,
        "numerator": 1,
        "denominator-exception": 1,
    }
    assert group["measureScore"] == {"value": 0.5}


def test_explain_names_the_missing_optic_disc_exam(ruleset):
    """Only the cup to disc ratio: the trail says which of the two exams is missing."""
    run = run_resources([*glaucoma_visit(), exams()[0]], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS143"], full=True)
    assert "NOT MET" in text
    assert "[x] Cup to disc ratio with a result during a glaucoma encounter" in text
    assert "[ ] Optic disc exam with a result during a glaucoma encounter" in text
    assert "Observation/p1-cd" in text
