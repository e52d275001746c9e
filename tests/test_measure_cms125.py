"""CMS125 breast cancer screening (MIPS 112, BreastCancerScreeningFHIR 0.0.001): what the generated cases of
tests/oracle/cms125.py cannot show: claims codes per year, the summary report's counts, the explain trail,
and the body-site test of a unilateral mastectomy."""

from __future__ import annotations

import pytest

from fhir_cat2.explain import outcome_to_text

from .conftest import ICD10, SNOMED, coded_obs, condition, encounter, patient, procedure, run_resources

URL = "https://madie.cms.gov/Measure/BreastCancerScreeningFHIR"


def woman(birth: str = "1962-05-01", **kw):
    return [patient(birth=birth), encounter(**kw)]


def mammogram(when: str = "2025-02-10T08:00:00Z"):
    return coded_obs("mg", "24606-6", when, category="imaging")


def unilateral(side: str | None):
    made = condition("u", "73359007", system=SNOMED, onset="2019-01-01")
    if side:
        made["bodySite"] = [{"coding": [{"system": SNOMED, "code": side}]}]
    return made


@pytest.mark.parametrize(("side", "excluded"), [("24028007", True), ("7771000", False), (None, False)])
def test_unilateral_mastectomy_counts_for_the_side_its_body_site_names(ruleset, side, excluded):
    """'Right Mastectomy Diagnosis': Unilateral Mastectomy, Unspecified Laterality where bodySite ~ Right;
    with a left mastectomy (Z90.12) that makes both sides."""
    left = condition("l", "Z90.12", system=ICD10, onset="2020-01-01")
    run = run_resources([*woman(), unilateral(side), left], ruleset)
    assert run.population("CMS125")["denominator-exclusion"] is excluded


@pytest.mark.parametrize(
    ("year", "birth", "codes"),
    [
        (2019, "1962-05-01", ["G9899"]),
        (2023, "1962-05-01", ["G9899"]),
        (2025, "1962-05-01", ["G9899"]),
    ],
)
def test_mips112_met_code_every_year(ruleset, year, birth, codes):
    """MIPS 112 (claims single source 2019-2025): G9899 when a mammogram is documented."""
    resources = [
        patient(birth=birth),
        encounter(start=f"{year}-03-04T09:00:00Z"),
        mammogram(f"{year}-02-10T08:00:00Z"),
    ]
    run = run_resources(resources, ruleset, period=year, program="mips-claims")
    assert run.measure_codes("CMS125") == codes


def test_mips112_not_met_and_exclusions(ruleset):
    """G9900 without a mammogram; G9708 for a bilateral mastectomy; G9709 for hospice (listed first);
    G9992 for palliative care from 2022, nothing for it in 2021 (no such option that year)."""
    claims = {"program": "mips-claims"}
    assert run_resources(woman(), ruleset, **claims).measure_codes("CMS125") == ["G9900"]
    bilateral = [*woman(), procedure("mx", "22418005", "2015-06-01T09:00:00Z")]
    assert run_resources(bilateral, ruleset, **claims).measure_codes("CMS125") == ["G9708"]
    hospice = [*bilateral, encounter("h", "2025-02-01T09:00:00Z", cpt="183919006", system=SNOMED)]
    assert run_resources(hospice, ruleset, **claims).measure_codes("CMS125", "e1") == ["G9709"]
    palliative = [*woman(), encounter("pal", "2025-01-10T09:00:00Z", system=SNOMED, cpt="305686008")]
    assert run_resources(palliative, ruleset, **claims).measure_codes("CMS125", "e1") == ["G9992"]
    palliative_2021 = [
        patient(birth="1962-05-01"),
        encounter(start="2021-03-04T09:00:00Z"),
        encounter("pal", "2021-01-10T09:00:00Z", system=SNOMED, cpt="305686008"),
    ]
    run = run_resources(palliative_2021, ruleset, period=2021, **claims)
    assert run.population("CMS125")["denominator-exclusion"] is True
    assert run.measure_codes("CMS125") == []


@pytest.mark.parametrize("year", [2023, 2025])
def test_mips112_claims_age_band_at_the_visit(ruleset, year):
    """Claims denominator: women 51-74 at the visit (2019-2023), 41-74 (2024-2025). A woman who is 51 at a
    January visit and 52 at the end of the period is in the eCQM (52-74 at the end) and in both bands."""
    resources = [patient(birth=f"{year - 52}-12-31"), encounter(start=f"{year}-01-10T09:00:00Z")]
    run = run_resources(resources, ruleset, period=year, program="mips-claims")
    assert run.population("CMS125")["initial-population"] is True
    assert run.measure_codes("CMS125") == ["G9900"]


def test_a_man_gets_no_mips112_codes(ruleset):
    """Claims denominator: GENDER F (and the eCQM's Patient.gender = 'female')."""
    resources = [patient(birth="1962-05-01", gender="male"), encounter()]
    run = run_resources(resources, ruleset, program="mips-claims")
    assert run.measure_codes("CMS125") == []
    assert run.population("CMS125")["initial-population"] is False


def test_individual_and_summary_reports(ruleset):
    """An individual report per patient; the summary adds up met 1 / (denominator 3 - excluded 1)."""
    resources = [
        *woman(),
        mammogram(),
        patient("p2", birth="1962-05-01"),
        encounter("e2", pid="p2"),
        patient("p3", birth="1962-05-01"),
        encounter("e3", pid="p3"),
        procedure("mx", "22418005", "2015-06-01T09:00:00Z", pid="p3"),
    ]
    run = run_resources(resources, ruleset, report="both")
    reports = [r for r in run.reports if r["measure"].startswith(URL)]
    individual = [r for r in reports if r["type"] == "individual"]
    [summary] = [r for r in reports if r["type"] == "summary"]
    assert len(individual) == 3
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in summary["group"][0]["population"]}
    assert counts == {"initial-population": 3, "denominator": 3, "denominator-exclusion": 1, "numerator": 1}
    assert summary["group"][0]["measureScore"] == {"value": 0.5}


def test_explain_names_the_mammogram_and_its_window(ruleset):
    """The trail of a met patient names the deciding mammogram and the window from 1 October two years
    before the period."""
    run = run_resources([*woman(), mammogram("2023-11-02T08:00:00Z")], ruleset)
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS125"], full=True)
    assert "Mammogram from 1 October two years before the period to its end" in text
    assert "Observation/mg" in text
    assert "2023-10-01" in text
