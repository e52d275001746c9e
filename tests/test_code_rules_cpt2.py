"""Criterion-triggered CPT II code rules (program hedis), each at the boundaries of its trigger (domain.md
§1.4, research §5). Codes are judged per encounter: anchors encounter.start/encounter.end name the visit."""

from __future__ import annotations

import pytest

from .conftest import (
    CPT,
    CVX,
    ICD10,
    LOINC,
    SNOMED,
    coded_obs,
    condition,
    encounter,
    immunization,
    not_done_obs,
    patient,
    procedure,
    quantity_obs,
    run_resources,
)


def visit(birth: str = "1955-06-01", **kw):
    return [patient(birth=birth), encounter(**kw)]


def codes(resources, ruleset, **kw):
    return run_resources(resources, ruleset, **kw).codes("e1")


def test_3008f_bmi_documented_at_the_visit(ruleset):
    """3008F: a BMI (39156-5, kg/m2, final/amended/corrected) on the visit's days."""
    bmi = quantity_obs("b", "39156-5", 24.0, "kg/m2", category="vital-signs")
    assert "3008F" in codes([*visit(), bmi], ruleset)
    other_day = quantity_obs(
        "b", "39156-5", 24.0, "kg/m2", "2025-03-05T09:00:00Z", eid=None, category="vital-signs"
    )
    assert "3008F" not in codes([*visit(), other_day], ruleset)


@pytest.mark.parametrize(
    ("category", "expected"), [("social-history", ["1036F"]), ("survey", ["1036F"]), ("exam", [])]
)
def test_1036f_tobacco_non_user_reads_us_core_smoking_status(ruleset, category, expected):
    """1036F: latest tobacco screening up to the visit says non-user; survey or US Core social-history
    category."""
    screening = coded_obs("s", "72166-2", "2025-02-01T09:00:00Z", value_code="8517006", category=category)
    assert [c for c in codes([*visit(), screening], ruleset) if c.startswith(("1036F", "4004F"))] == expected


def test_4004f_user_with_counseling_and_8p_without(ruleset):
    """4004F: a current user who got cessation counseling from 6 months before the period to the visit;
    4004F-8P when none was given and no reason is documented."""
    user = coded_obs("s", "72166-2", "2025-02-01T09:00:00Z", value_code="77176002", category="social-history")
    counseling = procedure("c", "99406", "2024-07-01T09:00:00Z", system=CPT)
    assert "4004F" in codes([*visit(), user, counseling], ruleset)
    too_early = procedure("c", "99406", "2024-06-30T09:00:00Z", system=CPT)
    assert "4004F-8P" in codes([*visit(), user, too_early], ruleset)


def test_4004f_1p_when_cessation_not_done_for_a_medical_reason(ruleset):
    """4004F-1P: a not-done cessation counseling with statusReason in the Medical Reason value set."""
    user = coded_obs("s", "72166-2", "2025-02-01T09:00:00Z", value_code="77176002", category="social-history")
    not_done = procedure(
        "c", "99406", "2025-03-04T09:20:00Z", system=CPT, status="not-done", status_reason="183932001"
    )
    assert [c for c in codes([*visit(), user, not_done], ruleset) if c.startswith("4004F")] == ["4004F-1P"]


@pytest.mark.parametrize(("count", "code"), [(0, "1101F"), (1, "1101F"), (2, "1100F"), (5, "1100F")])
def test_1100f_1101f_fall_count_bands(ruleset, count, code):
    """1100F >= 2 falls in the past year; 1101F 0 or 1 (LOINC 52552-7, a count, valueInteger here)."""
    falls = coded_obs("f", "52552-7", value=count, value_kind="integer")
    assert [c for c in codes([*visit(), falls], ruleset) if c in ("1100F", "1101F")] == [code]


def test_3288f_falls_risk_assessment_and_1p_2p(ruleset):
    """3288F: a falls risk assessment at the visit; 3288F-1P when documented not done for a medical reason
    (Medical Reason VS), 3288F-2P for a patient reason (Patient Declined VS), read from the notDoneReason."""
    assert "3288F" in codes([*visit(), coded_obs("r", "73830-2")], ruleset)
    not_done = not_done_obs("r", "73830-2", "183932001", "2025-03-04T09:15:00Z")
    assert [c for c in codes([*visit(), not_done], ruleset) if c.startswith("3288F")] == ["3288F-1P"]
    declined = not_done_obs("r", "73830-2", "105480006", "2025-03-04T09:15:00Z")
    assert [c for c in codes([*visit(), declined], ruleset) if c.startswith("3288F")] == ["3288F-2P"]


@pytest.mark.parametrize(("birth", "earned"), [("1960-03-04", True), ("1960-03-05", False)])
def test_4040f_pneumococcal_vaccine_ever_at_65_plus(ruleset, birth, earned):
    """4040F: age 65+ at the visit and a pneumococcal vaccine (CVX 33...) on or before it, any year."""
    shot = immunization("i", "33", "2015-10-01")
    assert ("4040F" in codes([*visit(birth=birth), shot], ruleset)) is earned


def test_4040f_vaccine_after_the_visit_does_not_count(ruleset):
    """'ends_by encounter.end': a vaccine documented after the visit is not 'previously received'."""
    assert "4040F" not in codes([*visit(), immunization("i", "33", "2025-04-01")], ruleset)


@pytest.mark.parametrize(
    ("performed", "earned"), [("2016-01-01T09:00:00Z", True), ("2015-12-31T09:00:00Z", False)]
)
def test_3017f_colonoscopy_nine_years_before_the_period(ruleset, performed, earned):
    """3017F: colonoscopy within [start of period - 9 years, the visit] (CMS130 window), age 45-75."""
    scope = procedure("c", "45378", performed, system=CPT)
    assert ("3017F" in codes([*visit(birth="1965-06-01"), scope], ruleset)) is earned


def test_1123f_acp_documented_and_1124f_declined(ruleset):
    """1123F: advance care planning documented by the visit (65+); 1124F: discussed but declined by the
    patient."""
    acp = procedure("a", "713603004", "2024-05-01T09:00:00Z")
    assert "1123F" in codes([*visit(birth="1950-01-01"), acp], ruleset)
    declined = procedure(
        "a", "713603004", "2025-03-04T09:20:00Z", status="not-done", status_reason="105480006"
    )
    assert "1124F" in codes([*visit(birth="1950-01-01"), declined], ruleset)
    directive = {
        "resourceType": "DocumentReference",
        "id": "d",
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "42348-3"}]},
        "subject": {"reference": "Patient/p1"},
        "date": "2022-01-01T00:00:00Z",
    }
    assert "1123F" in codes([*visit(birth="1950-01-01"), directive], ruleset)


@pytest.mark.parametrize(("score", "code"), [(0, "1126F"), (1, "1125F"), (7, "1125F")])
def test_1125f_1126f_pain_score(ruleset, score, code):
    """1125F pain present (score > 0), 1126F no pain (score 0): LOINC 72514-3, status final, at the visit."""
    pain = coded_obs("p", "72514-3", value=score, category="survey")
    assert [c for c in codes([*visit(), pain], ruleset) if c in ("1125F", "1126F")] == [code]


def test_pain_interference_score_is_not_pain_severity(ruleset):
    """77565-0 (pain interference) is in the CMS pain VS but is not a severity score: no 1125F."""
    interference = coded_obs("p", "77565-0", value=5, category="survey")
    assert not [c for c in codes([*visit(), interference], ruleset) if c in ("1125F", "1126F")]


def test_1159f_medications_documented_and_1160f_reviewed(ruleset):
    """1159F: SNOMED 428191000124101 completed during the visit (CMS68); 1160F: medication review
    182836005."""
    documented = procedure("m", "428191000124101", "2025-03-04T09:20:00Z")
    reviewed = procedure("r", "182836005", "2025-03-04T09:21:00Z")
    earned = codes([*visit(), documented, reviewed], ruleset)
    assert "1159F" in earned and "1160F" in earned


@pytest.mark.parametrize(
    ("discharged", "earned"), [("2025-02-02T10:00:00Z", True), ("2025-02-01T10:00:00Z", False)]
)
def test_1111f_reconciliation_within_30_days_of_discharge(ruleset, discharged, earned):
    """1111F: medication reconciliation at the visit within 30 days after an inpatient discharge."""
    stay = encounter(
        "ip", "2025-01-28T10:00:00Z", end=discharged, cpt="183452005", system=SNOMED, klass="IMP"
    )
    reconciliation = procedure("r", "430193006", "2025-03-04T09:20:00Z")
    assert ("1111F" in codes([*visit(), stay, reconciliation], ruleset)) is earned


@pytest.mark.parametrize(
    ("snomed", "code"), [("424441002", "0500F"), ("424619006", "0502F"), ("169762003", "0503F")]
)
def test_prenatal_and_postpartum_visits(ruleset, snomed, code):
    """0500F initial prenatal, 0502F subsequent prenatal, 0503F postpartum: the visit's own SNOMED type."""
    resources = [patient(birth="1995-01-01", gender="female"), encounter(cpt=snomed, system=SNOMED)]
    assert codes(resources, ruleset) == [code]


def test_retinal_exam_codes_by_method_and_retinopathy(ruleset):
    """2022F/2023F dilated exam with/without retinopathy, 2026F/2033F imaging; retinopathy from a
    Condition."""
    exam = coded_obs("x", "308110009", system=SNOMED, category="exam")
    imaging = coded_obs("y", "314971001", system=SNOMED, category="exam")
    retinopathy = condition("r", "E11.319", onset="2024-01-01", system=ICD10)
    assert "2023F" in codes([*visit(), exam], ruleset)
    assert "2022F" in codes([*visit(), exam, retinopathy], ruleset)
    assert "2033F" in codes([*visit(), imaging], ruleset)
    assert "2026F" in codes([*visit(), imaging, retinopathy], ruleset)


def test_3072f_low_risk_after_a_negative_exam_last_year(ruleset):
    """3072F: a diabetic with an eye exam in the year before the period and no retinopathy then."""
    diabetes = condition("dm", "E11.9", onset="2018-01-01")
    last_year = coded_obs("x", "308110009", "2024-06-01T09:00:00Z", system=SNOMED, category="exam")
    assert "3072F" in codes([*visit(), diabetes, last_year], ruleset)
    retinopathy = condition("r", "E11.319", onset="2024-01-01")
    assert "3072F" not in codes([*visit(), diabetes, last_year, retinopathy], ruleset)


@pytest.mark.parametrize(
    ("value", "unit", "code"),
    [
        (99.9, "mg/dL", "3048F"),
        (100, "mg/dL", "3049F"),
        (129.9, "mg/dL", "3049F"),
        (130, "mg/dL", "3050F"),
        (2.5, "mmol/L", "3048F"),
    ],
)
def test_ldl_bands(ruleset, value, unit, code):
    """3048F < 100, 3049F 100-129, 3050F >= 130 mg/dL; mmol/L x 38.67 (2.5 mmol/L = 96.7 mg/dL)."""
    ldl = quantity_obs("l", "13457-7", value, unit)
    assert [c for c in codes([*visit(), ldl], ruleset) if c.startswith("30")] == [code]


def test_ldl_goal_is_not_a_result(ruleset):
    """LOINC 86911-5 (LDL goal) is in the LDL value set but is not a measurement."""
    goal = quantity_obs("l", "86911-5", 70, "mg/dL")
    assert not [c for c in codes([*visit(), goal], ruleset) if c in ("3048F", "3049F", "3050F")]


def test_codes_are_only_for_hedis(ruleset):
    """Program mips-claims never emits the HEDIS rows (CPT II bands are payer codes)."""
    bmi = quantity_obs("b", "39156-5", 24.0, "kg/m2", category="vital-signs")
    mips = run_resources([*visit(), bmi], ruleset, program="mips-claims")
    assert "3008F" not in mips.codes()
    assert (CVX, "33") in ruleset.resolve_codes((), ("2.16.840.1.113883.3.464.1003.1161",))
