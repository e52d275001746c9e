"""CMS131 diabetes eye exam (MIPS 117, DiabetesEyeExamFHIR 0.0.002): what the generated cases of
tests/oracle/cms131.py cannot show: claims codes per year, the summary report's counts, the explain trail
(report shape: tests/test_measure_reports_shape.py)."""

from __future__ import annotations

import pytest

from fhir_cat2.explain import outcome_to_text

from .conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient, run_resources

URL = "https://madie.cms.gov/Measure/DiabetesEyeExamFHIR"


def diabetic(year: int = 2025, pid: str = "p1", eid: str = "e1"):
    return [
        patient(pid, birth="1965-05-01"),
        condition("dm", "E11.9", pid=pid, system=ICD10, onset="2015-01-01"),
        encounter(eid, f"{year}-03-04T09:00:00Z", pid=pid),
    ]


def exam(when: str, pid: str = "p1"):
    return coded_obs("eye", "308110009", when, pid=pid, system=SNOMED, category="exam")


def retinopathy():
    return condition("dr", "E11.319", system=ICD10, onset="2020-01-01")


@pytest.mark.parametrize(
    ("extra", "codes"),
    [
        ([retinopathy(), exam("2022-03-04T09:30:00Z")], ["2022F"]),
        ([exam("2022-03-04T09:30:00Z")], ["2023F"]),
        ([exam("2021-06-01T09:30:00Z")], ["3072F"]),
        ([], ["2022F-8P"]),
        ([encounter("h", "2022-02-01T09:00:00Z", system=SNOMED, cpt="183919006")], ["G9714"]),
        ([encounter("pal", "2022-02-01T09:00:00Z", system=SNOMED, cpt="305686008")], ["G9994"]),
    ],
    ids=["retinopathy", "no-retinopathy", "prior-year-low-risk", "not-met", "hospice", "palliative"],
)
def test_mips117_codes_2022(ruleset, extra, codes):
    """MIPS 117 (claims single source 2022): 2022F / 2023F for an exam in the period with / without
    retinopathy, 3072F for a negative exam in the year before, 2022F-8P when none, G9714 hospice, G9994
    palliative care."""
    run = run_resources([*diabetic(2022), *extra], ruleset, period=2022, program="mips-claims")
    assert run.measure_codes("CMS131", "e1") == codes


def test_mips117_palliative_care_has_no_code_in_2021(ruleset):
    """G9994 is listed from 2022: a 2021 palliative-care exclusion reports nothing."""
    palliative = encounter("pal", "2021-02-01T09:00:00Z", system=SNOMED, cpt="305686008")
    run = run_resources([*diabetic(2021), palliative], ruleset, period=2021, program="mips-claims")
    assert run.population("CMS131")["denominator-exclusion"] is True
    assert run.measure_codes("CMS131") == []


@pytest.mark.parametrize("year", [2019, 2020, 2023, 2025])
def test_mips117_reports_nothing_outside_2021_2022(ruleset, year):
    """117 is not claims-reportable from 2023; 2019 and 2020 are left out (see cms131.yaml)."""
    run = run_resources(diabetic(year), ruleset, period=year, program="mips-claims")
    assert run.population("CMS131")["initial-population"] is True
    assert run.measure_codes("CMS131") == []


def test_individual_and_summary_reports(ruleset):
    """Summary: 1 met of 2."""
    resources = [*diabetic(), exam("2025-03-04T09:30:00Z"), *diabetic(pid="p2", eid="e2")]
    run = run_resources(resources, ruleset, report="both")
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    [summary] = [r for r in reports if r["type"] == "summary"]
    group = summary["group"][0]
    assert {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]} == {
        "initial-population": 2,
        "denominator": 2,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    assert group["measureScore"] == {"value": 0.5}


def test_explain_says_retinopathy_needs_an_exam_in_the_period(ruleset):
    """With retinopathy, last year's exam does not count: the trail names both branches."""
    run = run_resources([*diabetic(), retinopathy(), exam("2024-06-01T09:30:00Z")], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS131"], full=True)
    assert "NOT MET" in text
    assert "Retinopathy, with an exam in the period" in text
    assert "Condition/dr" in text
    assert "No retinopathy, with an exam in the period or the year before" in text
