"""CMS139 falls screening (MIPS 318, FallsScreeningForFutureFallRiskFHIR 0.2.001), CMS130 colorectal cancer
screening (MIPS 113, ColonCancerScreeningFHIR 0.1.000) and the claims-only MIPS 047 advance care plan."""

from __future__ import annotations

import json

import pytest

from .conftest import (
    CPT,
    HCPCS,
    LOINC,
    SNOMED,
    coded_obs,
    condition,
    encounter,
    patient,
    procedure,
    quantity_obs,
    run_resources,
)


def visit(birth: str, **kw):
    return [patient(birth=birth), encounter(**kw)]


# ----------------------------------------------------------------------------------------------- CMS139


@pytest.mark.parametrize(("birth", "in_population"), [("1960-01-01", True), ("1960-01-02", False)])
def test_cms139_age_65_at_start_of_period(ruleset, birth, in_population):
    """Initial Population: AgeInYearsAt(start of MP) >= 65."""
    assert run_resources(visit(birth), ruleset).population("CMS139")["initial-population"] is in_population


def test_cms139_nursing_facility_visit_qualifies(ruleset):
    """Qualifying Encounter includes Nursing Facility Visit (CPT 99307)."""
    resources = visit("1950-01-01", cpt="99307")
    assert run_resources(resources, ruleset).population("CMS139")["initial-population"] is True


def test_cms139_any_falls_screening_with_survey_category_meets(ruleset):
    """Numerator: an Observation in Falls Screening, isAssessmentPerformed (category survey), in the period;
    any value."""
    screened = coded_obs("f", "73830-2", "2025-03-04T09:10:00Z", value_code="LA6270-8", value_system=LOINC)
    assert run_resources([*visit("1950-01-01"), screened], ruleset).population("CMS139")["numerator"] is True
    no_category = coded_obs("f", "73830-2", "2025-03-04T09:10:00Z", category=None)
    assert (
        run_resources([*visit("1950-01-01"), no_category], ruleset).population("CMS139")["numerator"] is False
    )
    last_year = coded_obs("f", "73830-2", "2024-12-31T09:10:00Z")
    assert (
        run_resources([*visit("1950-01-01"), last_year], ruleset).population("CMS139")["numerator"] is False
    )


def test_cms139_has_no_claims_codes(ruleset):
    """MIPS 318 is EHR-only: no claims codes in any year (research §3.7)."""
    run = run_resources(visit("1950-01-01"), ruleset, program="mips-claims")
    assert run.measure_codes("CMS139") == []


# ----------------------------------------------------------------------------------------------- CMS130


@pytest.mark.parametrize(
    ("performed", "met"), [("2016-01-01T09:00:00Z", True), ("2015-12-31T09:00:00Z", False)]
)
def test_cms130_colonoscopy_within_nine_years_before_the_period(ruleset, performed, met):
    """'Colonoscopy Performed': ends during day of [start of MP - 9 years, end of MP]."""
    resources = [*visit("1965-06-01"), procedure("c", "45378", performed, system=CPT)]
    assert run_resources(resources, ruleset).population("CMS130")["numerator"] is met


@pytest.mark.parametrize(
    ("performed", "met"), [("2021-01-01T09:00:00Z", True), ("2020-12-31T09:00:00Z", False)]
)
def test_cms130_flexible_sigmoidoscopy_within_four_years(ruleset, performed, met):
    """'Flexible Sigmoidoscopy Performed': [start of MP - 4 years, end of MP]."""
    resources = [*visit("1965-06-01"), procedure("s", "45330", performed, system=CPT)]
    assert run_resources(resources, ruleset).population("CMS130")["numerator"] is met


@pytest.mark.parametrize(
    ("effective", "met"), [("2025-01-01T09:00:00Z", True), ("2024-12-31T09:00:00Z", False)]
)
def test_cms130_fobt_in_the_period_with_a_result(ruleset, effective, met):
    """'Fecal Occult Blood Test Performed': laboratory, value not null, during the period."""
    fobt = coded_obs("f", "12503-9", effective, category="laboratory", value_code="260385009")
    assert run_resources([*visit("1965-06-01"), fobt], ruleset).population("CMS130")["numerator"] is met


def test_cms130_fobt_without_result_does_not_count(ruleset):
    """'FecalOccultResult.value is not null'."""
    fobt = coded_obs("f", "12503-9", "2025-05-01T09:00:00Z", category="laboratory")
    assert run_resources([*visit("1965-06-01"), fobt], ruleset).population("CMS130")["numerator"] is False


@pytest.mark.parametrize(
    ("effective", "met"), [("2023-01-01T09:00:00Z", True), ("2022-12-31T09:00:00Z", False)]
)
def test_cms130_sdna_fit_within_two_years(ruleset, effective, met):
    """'Stool DNA with FIT Test Performed': [start of MP - 2 years, end of MP]."""
    test = quantity_obs("d", "77353-1", 1, None, effective, eid=None, category="laboratory")
    assert run_resources([*visit("1965-06-01"), test], ruleset).population("CMS130")["numerator"] is met


@pytest.mark.parametrize(
    ("birth", "in_population"),
    [("1979-12-31", True), ("1980-01-01", False), ("1950-01-01", True), ("1949-12-31", False)],
)
def test_cms130_age_46_to_75_at_end_of_period(ruleset, birth, in_population):
    """Initial Population: AgeInYearsAt(end of MP) in [46, 75]."""
    assert run_resources(visit(birth), ruleset).population("CMS130")["initial-population"] is in_population


def test_cms130_colorectal_cancer_or_colectomy_excludes(ruleset):
    """Denominator Exclusion: Malignant Neoplasm of Colon or Total Colectomy on or before the end of the
    period."""
    cancer = condition("crc", "C18.0", onset="2010-01-01")
    assert (
        run_resources([*visit("1965-06-01"), cancer], ruleset).population("CMS130")["denominator-exclusion"]
        is True
    )
    colectomy = procedure("col", "44150", "2001-01-01T09:00:00Z", system=CPT)
    assert (
        run_resources([*visit("1965-06-01"), colectomy], ruleset).population("CMS130")[
            "denominator-exclusion"
        ]
        is True
    )


def test_mips113_claims_codes_and_age_band(ruleset):
    """MIPS 113 (2025): 3017F met, 3017F-8P not met, G9711 for colorectal cancer; claims age 45-75 at the
    visit."""
    screened = [*visit("1965-06-01"), procedure("c", "45378", "2020-01-01T09:00:00Z", system=CPT)]
    assert run_resources(screened, ruleset, program="mips-claims").measure_codes("CMS130") == ["3017F"]
    assert run_resources(visit("1965-06-01"), ruleset, program="mips-claims").measure_codes("CMS130") == [
        "3017F-8P"
    ]
    cancer = [*visit("1965-06-01"), condition("crc", "C18.0", onset="2010-01-01")]
    assert run_resources(cancer, ruleset, program="mips-claims").measure_codes("CMS130") == ["G9711"]


# ----------------------------------------------------------------------------------------------- MIPS 047


def test_mips047_acp_documented_reports_1123f(ruleset):
    """MIPS 047: 1123F when an advance care plan is documented (our codes: SNOMED 713603004 procedure)."""
    resources = [*visit("1950-01-01"), procedure("acp", "713603004", "2023-05-01T09:00:00Z")]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("MIPS047") == ["1123F"]


def test_mips047_not_documented_reports_1123f_8p_and_age_65(ruleset):
    """MIPS 047: 1123F-8P when not documented; a 64-year-old is not in the measure (age 65+ at the visit)."""
    assert run_resources(visit("1950-01-01"), ruleset, program="mips-claims").measure_codes("MIPS047") == [
        "1123F-8P"
    ]
    assert run_resources(visit("1960-06-01"), ruleset, program="mips-claims").measure_codes("MIPS047") == []


def test_mips047_hospice_reports_the_exclusion(ruleset):
    """MIPS 047 exclusion G9692 for hospice instead of the performance code."""
    resources = [*visit("1950-01-01"), encounter("h", "2025-02-01T09:00:00Z", cpt="Q5003", system=HCPCS)]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("MIPS047", "e1") == [
        "G9692"
    ]


def test_mips047_writes_no_measure_report(ruleset):
    """A claims-only measure has no published Measure resource: no MeasureReport."""
    run = run_resources(visit("1950-01-01"), ruleset)
    assert not [r for r in run.reports if "MIPS047" in json.dumps(r)]


def test_snomed_codes_are_read(ruleset):
    """Sanity: value sets keep SNOMED codes (used by the ACP and hospice triggers)."""
    assert (SNOMED, "713603004") in ruleset.resolve_codes(("snomed#713603004",), ())
