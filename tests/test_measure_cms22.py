"""CMS22 (MIPS 317) BP screening and follow-up, an encounter-based measure (PCSBPScreeningFollowUpFHIR
0.2.000): each qualifying encounter is an episode; the last BP of the encounter decides (not the lowest of the
day)."""

from __future__ import annotations

import pytest

from .conftest import (
    ICD10,
    LOINC,
    RXNORM,
    bp_panel,
    condition,
    encounter,
    not_done_obs,
    patient,
    request,
    run_resources,
)


def visit(eid: str = "e1", day: str = "2025-03-04", birth: str = "1980-06-01", **kw):
    return [patient(birth=birth), encounter(eid, f"{day}T09:00:00Z", end=f"{day}T09:30:00Z", **kw)]


def bp(oid: str, sbp: float, dbp: float, at: str = "2025-03-04T09:10:00Z", **kw):
    return bp_panel(oid, sbp, dbp, at, eid=None, **kw)


def members(run):
    return run.population("CMS22")


@pytest.mark.parametrize(
    ("sbp", "dbp", "met"), [(119, 79, True), (120, 79, False), (119, 80, False), (0, 70, False)]
)
def test_normal_reading_is_met_without_follow_up(ruleset, sbp, dbp, met):
    """'Encounter with Normal Blood Pressure Reading': SBP in [1,120) and DBP in [1,80)."""
    assert members(run_resources([*visit(), bp("b", sbp, dbp)], ruleset))["numerator"] is met


def test_last_reading_of_the_encounter_decides_not_the_lowest(ruleset):
    """EncounterLastBP = Last(BP ... sort by start of effective): 118/76 then 128/76 -> elevated, not normal.
    (Contrast CMS165, which takes the lowest of the most recent day.)"""
    resources = [*visit(), bp("a", 118, 76, "2025-03-04T09:05:00Z"), bp("b", 128, 76, "2025-03-04T09:20:00Z")]
    assert members(run_resources(resources, ruleset))["numerator"] is False


def test_reading_after_the_encounter_ended_does_not_count_as_its_last_bp(ruleset):
    """'effective ends during QualifyingEncounter.period' (time precision): a 10:00 reading after a 09:30
    end."""
    resources = [*visit(), bp("a", 118, 76, "2025-03-04T09:05:00Z"), bp("b", 150, 95, "2025-03-04T10:00:00Z")]
    assert members(run_resources(resources, ruleset))["numerator"] is True


def test_elevated_needs_rescreen_and_lifestyle_or_referral(ruleset):
    """Elevated (SBP 120-129, DBP < 80): rescreen within 6 months and a lifestyle order at the encounter, or a
    referral."""
    rescreen = request("ServiceRequest", "r", "183617005", "2025-03-04T09:25:00Z")
    lifestyle = request("ServiceRequest", "l", "313204009", "2025-03-04T09:26:00Z")
    assert (
        members(run_resources([*visit(), bp("b", 124, 76), rescreen, lifestyle], ruleset))["numerator"]
        is True
    )
    assert members(run_resources([*visit(), bp("b", 124, 76), rescreen], ruleset))["numerator"] is False
    referral = request(
        "ServiceRequest", "ref", "134403003", "2025-03-04T09:25:00Z", reason="R03.0", reason_system=ICD10
    )
    assert members(run_resources([*visit(), bp("b", 124, 76), referral], ruleset))["numerator"] is True


def test_first_hypertensive_reading_needs_4_week_rescreen_and_lifestyle(ruleset):
    """First hypertensive (SBP >= 130 or DBP >= 80, none in the prior year): 4-week rescreen at the encounter
    and a lifestyle order in the period."""
    rescreen = request("ServiceRequest", "r", "183617005", "2025-03-04T09:25:00Z")  # in both follow-up VSs
    lifestyle = request("ServiceRequest", "l", "313204009", "2025-05-01T09:26:00Z")
    assert (
        members(run_resources([*visit(), bp("b", 134, 76), rescreen, lifestyle], ruleset))["numerator"]
        is True
    )
    assert members(run_resources([*visit(), bp("b", 134, 76), lifestyle], ruleset))["numerator"] is False


def test_second_hypertensive_reading_needs_more(ruleset):
    """Second hypertensive >= 140/90 (a hypertensive reading within a year before): 4-week rescreen, lab/ECG,
    lifestyle and an active antihypertensive order; the first-reading follow-up no longer suffices."""
    prior = bp("p", 142, 92, "2024-09-01T09:10:00Z")
    rescreen = request("ServiceRequest", "r", "183617005", "2025-03-04T09:25:00Z")
    lifestyle = request("ServiceRequest", "l", "313204009", "2025-03-04T09:26:00Z")
    ecg = request("ServiceRequest", "ecg", "34534-8", "2025-03-04T09:27:00Z", system=LOINC)
    med = request("MedicationRequest", "m", "1000001", "2025-03-04T09:28:00Z", system=RXNORM)
    base = [*visit(), prior, bp("b", 146, 92)]
    assert members(run_resources([*base, rescreen, lifestyle], ruleset))["numerator"] is False
    assert members(run_resources([*base, rescreen, lifestyle, ecg, med], ruleset))["numerator"] is True


@pytest.mark.parametrize(("prior_day", "second"), [("2024-03-04", True), ("2024-03-03", False)])
def test_prior_hypertensive_reading_window_is_one_year(ruleset, prior_day, second):
    """'ends 1 year or less before or on start of QualifyingEncounter.period': one year to the minute
    counts."""
    prior = bp("p", 142, 92, f"{prior_day}T09:00:00Z")
    rescreen = request("ServiceRequest", "r", "183617005", "2025-03-04T09:25:00Z")
    lifestyle = request("ServiceRequest", "l", "313204009", "2025-03-04T09:26:00Z")
    run = run_resources([*visit(), prior, bp("b", 134, 76), rescreen, lifestyle], ruleset)
    # First-reading follow-up meets the numerator only when this is not a second hypertensive reading.
    assert members(run)["numerator"] is (not second)


def test_each_encounter_is_an_episode(ruleset):
    """populationBasis Encounter: counts are episodes; one normal and one unscreened visit -> 2 / 1."""
    resources = [
        patient(birth="1980-06-01"),
        encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z"),
        encounter("e2", "2025-06-04T09:00:00Z", end="2025-06-04T09:30:00Z"),
        bp("b", 112, 72, "2025-03-04T09:10:00Z"),
    ]
    counts = run_resources(resources, ruleset).counts("CMS22")
    assert counts["initial-population"] == 2 and counts["denominator"] == 2 and counts["numerator"] == 1


def test_virtual_encounter_is_not_an_episode(ruleset):
    """Qualifying Encounter: class !~ virtual."""
    assert run_resources(visit(klass="VR"), ruleset).counts("CMS22")["initial-population"] == 0


def test_hypertension_on_the_problem_list_excludes_the_episode(ruleset):
    """Denominator Exclusions: Diagnosis of Hypertension (problem list or health concern) starting on or
    before the encounter day."""
    htn = condition("h", "I10", onset="2025-03-04", category="problem-list-item")
    assert run_resources([*visit(), htn], ruleset).counts("CMS22")["denominator-exclusion"] == 1
    later = condition("h", "I10", onset="2025-03-05", category="problem-list-item")
    assert run_resources([*visit(), later], ruleset).counts("CMS22")["denominator-exclusion"] == 0
    diagnosis_only = condition("h", "I10", onset="2024-01-01", category="encounter-diagnosis")
    assert run_resources([*visit(), diagnosis_only], ruleset).counts("CMS22")["denominator-exclusion"] == 0


def test_bp_declined_is_an_exception(ruleset):
    """Denominator Exceptions: ObservationNotDone for systolic BP, issued during the encounter day, patient
    declined."""
    declined = not_done_obs("nd", "8480-6", "105480006", "2025-03-04T09:15:00Z")
    assert run_resources([*visit(), declined], ruleset).counts("CMS22")["denominator-exception"] == 1


def test_claims_codes_per_episode(ruleset):
    """MIPS 317: G8783 normal, G8952 hypertensive without follow-up, G8785 no BP, G9744 hypertension
    diagnosed."""
    resources = [
        patient(birth="1980-06-01"),
        encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z"),
        encounter("e2", "2025-06-04T09:00:00Z", end="2025-06-04T09:30:00Z"),
        encounter("e3", "2025-09-04T09:00:00Z", end="2025-09-04T09:30:00Z"),
        bp("b1", 112, 72, "2025-03-04T09:10:00Z"),
        bp("b2", 138, 84, "2025-06-04T09:10:00Z"),
    ]
    run = run_resources(resources, ruleset, program="mips-claims")
    assert run.measure_codes("CMS22", "e1") == ["G8783"]
    assert run.measure_codes("CMS22", "e2") == ["G8952"]
    assert run.measure_codes("CMS22", "e3") == ["G8785"]
    htn = condition("h", "I10", onset="2025-05-01", category="problem-list-item")
    run = run_resources([*resources, htn], ruleset, program="mips-claims")
    assert run.measure_codes("CMS22", "e1") == ["G8783"] and run.measure_codes("CMS22", "e2") == ["G9744"]


def test_encounter_without_an_end_time_is_judged_by_its_day(ruleset):
    """FHIR Period without an end (or a date-only end): the encounter's end time is unknown, so 'during the
    encounter' falls back to its day rather than to its start instant."""
    open_visit = encounter("e1", "2025-03-04T09:00:00Z")
    del open_visit["period"]["end"]
    resources = [patient(birth="1980-06-01"), open_visit, bp("b", 112, 72, "2025-03-04T09:40:00Z")]
    assert members(run_resources(resources, ruleset))["numerator"] is True
    dated = encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04")
    resources = [patient(birth="1980-06-01"), dated, bp("b", 112, 72, "2025-03-04T15:40:00Z")]
    assert members(run_resources(resources, ruleset))["numerator"] is True


def test_first_hypertensive_reading_reads_blood_pressures_of_any_status(ruleset):
    """'Encounter with First Hypertensive Reading...' retrieves the day's BPs with no status filter (its
    other categories keep final/amended/corrected): a preliminary 135/85 with a 4-week rescreen and a
    lifestyle recommendation meets it; a preliminary 110/70 is no normal reading."""
    follow_up = [
        request("ServiceRequest", "rs", "183617005", "2025-03-04T09:25:00Z"),
        request("ServiceRequest", "ls", "313204009", "2025-03-04T09:25:00Z"),
    ]
    hypertensive = [*visit(), bp("b", 135, 85, status="preliminary"), *follow_up]
    assert members(run_resources(hypertensive, ruleset))["numerator"] is True
    normal = [*visit(), bp("b", 110, 70, status="preliminary")]
    assert members(run_resources(normal, ruleset))["numerator"] is False
    final_hypertensive_without_follow_up = [*visit(), bp("b", 135, 85)]
    assert members(run_resources(final_hypertensive_without_follow_up, ruleset))["numerator"] is False
