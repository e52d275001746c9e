"""CMS165 (MIPS 236) controlling high blood pressure: boundaries of its logic beyond the basics in
test_measure_cms165_cms122.py. Each test names the CQL rule (ControllingHighBloodPressureFHIR 0.1.000 and the
shared libraries Hospice 6.12.000, PalliativeCare 1.11.000, AdvancedIllnessandFrailty 1.16.000, Status
1.8.000)."""

from __future__ import annotations

import pytest

from .conftest import (
    CPT,
    HCPCS,
    SNOMED,
    bp_panel,
    coded_obs,
    condition,
    encounter,
    patient,
    procedure,
    request,
    run_resources,
)


def base(birth: str = "1960-06-01", **enc):
    return [patient(birth=birth), condition("htn", "I10", onset="2019-01-01"), encounter(**enc)]


def members(run):
    return run.population("CMS165")


# ----------------------------------------------------------------------------------------------- period


@pytest.mark.parametrize(
    ("when", "counts"),
    [("2025-12-31T23:00:00-05:00", True), ("2026-01-01T00:30:00Z", False), ("2024-12-31T20:00:00Z", False)],
)
def test_bp_reading_day_must_lie_in_the_period_inclusive(ruleset, when, counts):
    """'effective.latest() during day of Measurement Period': both ends inclusive, at day precision."""
    resources = [*base(), bp_panel("bp", 120, 70, when, eid=None)]
    assert members(run_resources(resources, ruleset))["numerator"] is counts


def test_reading_over_a_period_counts_on_its_last_day(ruleset):
    """QICoreCommon latest(): an effectivePeriod counts at its end; here the later uncontrolled reading
    wins."""
    late = bp_panel("bp2", 150, 95, "2025-10-01T09:00:00Z", eid=None)
    del late["effectiveDateTime"]
    late["effectivePeriod"] = {"start": "2025-03-01T09:00:00Z", "end": "2025-10-01T09:00:00Z"}
    resources = [*base(), bp_panel("bp1", 120, 70, "2025-06-01T09:00:00Z", eid=None), late]
    assert members(run_resources(resources, ruleset))["numerator"] is False


def test_lowest_systolic_and_diastolic_may_come_from_different_readings(ruleset):
    """Lowest systolic and lowest diastolic on the most recent day are taken independently."""
    resources = [
        *base(),
        bp_panel("a", 150, 70, "2025-05-01T09:00:00Z", eid=None),
        bp_panel("b", 130, 95, "2025-05-01T11:00:00Z", eid=None),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is True


@pytest.mark.parametrize("klass", ["EMER", "IMP", "ACUTE", "NONAC", "PRENC", "SS"])
def test_readings_from_acute_encounter_classes_do_not_count(ruleset, klass):
    """Readings whose Observation.encounter has class EMER/IMP/ACUTE/NONAC/PRENC/SS are ignored."""
    resources = [
        *base(),
        bp_panel("old", 150, 95, "2025-02-01T09:00:00Z", eid=None),
        encounter("acute", "2025-06-01T09:00:00Z", klass=klass, cpt="99223"),
        bp_panel("acute-bp", 118, 70, "2025-06-01T10:00:00Z", eid="acute"),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is False


@pytest.mark.parametrize("klass", ["AMB", "HH", "VR", "OBSENC"])
def test_readings_from_other_encounter_classes_count(ruleset, klass):
    """Only the six acute classes are excluded; ambulatory, home health, virtual and observation count."""
    resources = [
        *base(),
        bp_panel("old", 150, 95, "2025-02-01T09:00:00Z", eid=None),
        encounter("other", "2025-06-01T09:00:00Z", klass=klass),
        bp_panel("other-bp", 118, 70, "2025-06-01T10:00:00Z", eid="other"),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is True


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        ("final", True),
        ("amended", True),
        ("corrected", True),
        ("preliminary", False),
        ("entered-in-error", False),
    ],
)
def test_observation_status_filter(ruleset, status, counts):
    """Status.isObservationBP: final, amended, corrected only."""
    resources = [*base(), bp_panel("bp", 120, 70, status=status)]
    assert members(run_resources(resources, ruleset))["numerator"] is counts


# ----------------------------------------------------------------------------------------- initial population


@pytest.mark.parametrize(
    ("status", "qualifies"),
    [("finished", True), ("arrived", True), ("in-progress", True), ("cancelled", False), ("planned", False)],
)
def test_qualifying_encounter_statuses(ruleset, status, qualifies):
    """Status.isEncounterPerformed: finished, arrived, triaged, in-progress, onleave."""
    assert members(run_resources(base(status=status), ruleset))["initial-population"] is qualifies


@pytest.mark.parametrize(
    ("code", "system"), [("G0438", HCPCS), ("99395", CPT), ("99442", CPT), ("99348", CPT)]
)
def test_other_adult_outpatient_encounter_types_qualify(ruleset, code, system):
    """AdultOutpatientEncounters 4.11.000: wellness, preventive, telephone and home visits qualify too."""
    resources = [patient(birth="1960-06-01"), condition("htn", "I10"), encounter(cpt=code, system=system)]
    assert members(run_resources(resources, ruleset))["initial-population"] is True


def test_encounter_spanning_the_period_start_does_not_qualify(ruleset):
    """'period during day of Measurement Period': an encounter starting the day before the period does not."""
    resources = base(start="2024-12-31T22:00:00Z", end="2025-01-01T01:00:00Z")
    assert members(run_resources(resources, ruleset))["initial-population"] is False


def test_resolved_hypertension_before_the_period_does_not_qualify(ruleset):
    """prevalenceInterval(): a Condition abated before the period does not overlap its first six months."""
    resources = [
        patient(birth="1960-06-01"),
        condition("htn", "I10", onset="2019-01-01", status="resolved", abatement="2024-12-31"),
        encounter(),
    ]
    assert members(run_resources(resources, ruleset))["initial-population"] is False


def test_refuted_hypertension_does_not_qualify(ruleset):
    """Deviation ignore-refuted-conditions (the CQL reads no verificationStatus): refuted diagnoses do not
    count; by the published logic (the default) they do."""
    htn = condition("htn", "I10")
    htn["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    on = frozenset({"ignore-refuted-conditions"})
    resources = [patient(), htn, encounter()]
    assert members(run_resources(resources, ruleset, deviations=on))["initial-population"] is False
    assert members(run_resources(resources, ruleset))["initial-population"] is True


# ----------------------------------------------------------------------------------------------- exclusions


def test_hospice_encounter_excludes(ruleset):
    """Hospice: an Encounter in Hospice Encounter (HCPCS Q5003...) overlapping the period."""
    resources = [*base(), encounter("hospice", "2025-06-01T09:00:00Z", cpt="Q5003", system=HCPCS, klass="HH")]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True


def test_inpatient_discharge_to_hospice_excludes(ruleset):
    """Hospice: an inpatient Encounter discharged to hospice (SNOMED 428361000124107) ending in the period."""
    stay = encounter(
        "ip",
        "2025-03-01T09:00:00Z",
        end="2025-03-05T09:00:00Z",
        cpt="183452005",
        system=SNOMED,
        klass="IMP",
        discharge="428361000124107",
    )
    assert members(run_resources([*base(), stay], ruleset))["denominator-exclusion"] is True


def test_hospice_assessment_needs_survey_category_and_yes(ruleset):
    """Hospice: Observation 45755-6 answered Yes (373066001) with category survey (isAssessmentPerformed)."""
    yes = coded_obs("h", "45755-6", "2025-04-01T09:00:00Z", value_code="373066001")
    assert members(run_resources([*base(), yes], ruleset))["denominator-exclusion"] is True
    no_category = coded_obs("h", "45755-6", "2025-04-01T09:00:00Z", value_code="373066001", category=None)
    assert members(run_resources([*base(), no_category], ruleset))["denominator-exclusion"] is False
    answered_no = coded_obs("h", "45755-6", "2025-04-01T09:00:00Z", value_code="373067005")
    assert members(run_resources([*base(), answered_no], ruleset))["denominator-exclusion"] is False


def test_hospice_order_must_be_an_active_or_completed_order(ruleset):
    """Hospice: ServiceRequest in Hospice Care Ambulatory, status active/completed, intent order."""
    order = request("ServiceRequest", "sr", "385763009")
    assert members(run_resources([*base(), order], ruleset))["denominator-exclusion"] is True
    plan = request("ServiceRequest", "sr", "385763009", intent="plan")
    assert members(run_resources([*base(), plan], ruleset))["denominator-exclusion"] is False


def test_pregnancy_overlapping_the_period_excludes(ruleset):
    """Pregnancy or Renal Diagnosis: Pregnancy Condition overlapping the period (O09.01 in the VS)."""
    resources = [*base(), condition("preg", "O09.01", onset="2025-11-30")]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True


def test_dialysis_any_time_before_the_period_end_excludes(ruleset):
    """End Stage Renal Disease Procedures: completed dialysis ending on or before the period end (no
    look-back)."""
    resources = [*base(), procedure("dial", "90935", "2012-05-05T09:00:00Z", system=CPT)]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True
    future = [*base(), procedure("dial", "90935", "2026-01-02T09:00:00Z", system=CPT)]
    assert members(run_resources(future, ruleset))["denominator-exclusion"] is False


@pytest.mark.parametrize(("birth", "excluded"), [("1944-12-31", True), ("1945-01-01", False)])
def test_81_or_older_with_frailty_alone_excludes(ruleset, birth, excluded):
    """'Age 81 or Older with Frailty' (age at end of period): 81 on 2025-12-31 excludes, 80 needs advanced
    illness."""
    resources = [*base(birth=birth), condition("frail", "M62.81", onset="2025-02-01")]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is excluded


@pytest.mark.parametrize(("onset", "excluded"), [("2024-01-01", True), ("2023-12-31", False)])
def test_66_to_80_needs_advanced_illness_starting_in_the_year_before(ruleset, onset, excluded):
    """AIF 1.16.000: advanced illness prevalence 'starts during day of [start of MP - 1 year, end of MP]'."""
    resources = [
        *base(birth="1950-06-01"),
        condition("frail", "M62.81", onset="2025-02-01"),
        condition("ai", "C25.0", onset=onset),  # pancreatic cancer: Advanced Illness VS
    ]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is excluded


def test_66_to_80_with_frailty_and_active_dementia_medication_excludes(ruleset):
    """AIF 1.16.000: active dementia medication order whose supply period overlaps the year before or the
    period."""
    med = request(
        "MedicationRequest",
        "donepezil",
        "310436",
        "2024-03-01T09:00:00Z",
        system="http://www.nlm.nih.gov/research/umls/rxnorm",
        supply_days=90,
    )
    resources = [*base(birth="1950-06-01"), condition("frail", "M62.81", onset="2025-02-01"), med]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True
    no_supply = dict(med)
    del no_supply["dispenseRequest"]  # medicationRequestPeriod() is null without a supply: not counted
    resources = [*base(birth="1950-06-01"), condition("frail", "M62.81", onset="2025-02-01"), no_supply]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is False


def test_frailty_device_order_marked_do_not_perform_does_not_count(ruleset):
    """AIF: DeviceRequest in Frailty Device 'where doNotPerform() is not true' (QI-Core modifier
    extension)."""
    wheelchair = request("DeviceRequest", "wc", "58938008", "2025-04-01T09:00:00Z")
    assert (
        members(run_resources([*base(birth="1940-01-01"), wheelchair], ruleset))["denominator-exclusion"]
        is True
    )
    refused = request("DeviceRequest", "wc", "58938008", "2025-04-01T09:00:00Z", do_not_perform=True)
    assert (
        members(run_resources([*base(birth="1940-01-01"), refused], ruleset))["denominator-exclusion"]
        is False
    )


def test_only_the_latest_housing_status_decides_nursing_home(ruleset):
    """'Is Age 66 or Older Living Long Term in a Nursing Home': the last housing status by end of
    effective."""
    nursing = coded_obs("h1", "71802-3", "2025-02-01T09:00:00Z", value_code="160734000")
    home = coded_obs("h2", "71802-3", "2025-08-01T09:00:00Z", value_code="160903007")
    assert (
        members(run_resources([*base(birth="1950-01-01"), nursing], ruleset))["denominator-exclusion"] is True
    )
    assert (
        members(run_resources([*base(birth="1950-01-01"), nursing, home], ruleset))["denominator-exclusion"]
        is False
    )
    assert (
        members(run_resources([*base(birth="1960-01-01"), nursing], ruleset))["denominator-exclusion"]
        is False
    )


def test_palliative_care_excludes(ruleset):
    """PalliativeCare: Condition Z51.5 overlapping the period."""
    resources = [*base(), condition("pall", "Z51.5", onset="2025-09-01")]
    assert members(run_resources(resources, ruleset))["denominator-exclusion"] is True


def test_excluded_patient_is_not_in_the_numerator_even_when_controlled(ruleset):
    """Proportion semantics: numerator counts only when not excluded."""
    resources = [*base(), condition("pall", "Z51.5", onset="2025-09-01"), bp_panel("bp", 118, 70)]
    populations = members(run_resources(resources, ruleset))
    assert populations["denominator-exclusion"] is True and populations["numerator"] is False
