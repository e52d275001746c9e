"""CMS2 (MIPS 134) depression screening and follow-up plan (PCSDepressionScreenAndFollowUpFHIR 0.2.000), with
the labelled PHQ total-score deviation (PHQ-9 >= 10, PHQ-2 >= 3 positive; totals as
valueQuantity/Integer/String)."""

from __future__ import annotations

import pytest

from .conftest import (
    RXNORM,
    SNOMED,
    coded_obs,
    condition,
    encounter,
    not_done_obs,
    patient,
    procedure,
    request,
    run_resources,
)

NEGATIVE = "428171000124102"
POSITIVE = "428181000124104"
ADULT = "73832-8"
ADOLESCENT = "73831-0"


def visit(
    birth: str = "1980-06-01", start: str = "2025-03-04T09:00:00Z", end: str = "2025-03-04T09:30:00Z", **kw
):
    return [patient(birth=birth), encounter(start=start, end=end, **kw)]


def screen(value: str | None = NEGATIVE, when: str = "2025-03-04T09:05:00Z", code: str = ADULT, **kw):
    return coded_obs("scr", code, when, value_code=value, category=kw.pop("category", None), **kw)


def members(run):
    return run.population("CMS2")


@pytest.mark.parametrize(("birth", "in_population"), [("2013-01-01", True), ("2013-01-02", False)])
def test_age_12_at_start_of_period(ruleset, birth, in_population):
    """Initial Population: AgeInYearsAt(start of MP) >= 12 and a qualifying encounter."""
    assert members(run_resources(visit(birth=birth), ruleset))["initial-population"] is in_population


def test_qualifying_encounter_must_be_finished(ruleset):
    """Qualifying Encounter: status = 'finished' only (arrived/in-progress do not count in CMS2)."""
    assert members(run_resources(visit(status="in-progress"), ruleset))["initial-population"] is False


def test_negative_adult_screen_on_the_day_meets(ruleset):
    """Numerator (18+): most recent adult screening negative (SNOMED 428171000124102)."""
    assert members(run_resources([*visit(), screen()], ruleset))["numerator"] is True


@pytest.mark.parametrize(
    ("when", "met"),
    [("2025-02-18T09:00:00Z", True), ("2025-02-17T09:00:00Z", False), ("2025-03-05T09:00:00Z", False)],
)
def test_screen_must_be_14_days_or_less_before_the_encounter(ruleset, when, met):
    """'14 days or less on or before day of start of QualifyingEncounter.period': 14 days counts, 15 and after
    do not."""
    assert members(run_resources([*visit(), screen(when=when)], ruleset))["numerator"] is met


@pytest.mark.parametrize(("status", "met"), [("final", True), ("amended", False), ("corrected", False)])
def test_screening_status_final_only(ruleset, status, met):
    """Most Recent Adult Depression Screening: status = 'final' (amended/corrected do not count in CMS2)."""
    assert members(run_resources([*visit(), screen(status=status)], ruleset))["numerator"] is met


def test_screening_without_a_value_does_not_count(ruleset):
    """'AdultDepressionScreening.value is not null'."""
    assert members(run_resources([*visit(), screen(value=None)], ruleset))["numerator"] is False


def test_adult_tool_does_not_count_for_a_15_year_old(ruleset):
    """Numerator: ages 12-16 need the adolescent screening (73831-0); 17 accepts either; 18+ the adult one."""
    assert (
        members(run_resources([*visit(birth="2010-01-01"), screen(code=ADULT)], ruleset))["numerator"]
        is False
    )
    assert (
        members(run_resources([*visit(birth="2010-01-01"), screen(code=ADOLESCENT)], ruleset))["numerator"]
        is True
    )
    assert (
        members(run_resources([*visit(birth="2008-01-01"), screen(code=ADULT)], ruleset))["numerator"] is True
    )
    assert (
        members(run_resources([*visit(birth="1990-01-01"), screen(code=ADOLESCENT)], ruleset))["numerator"]
        is False
    )


def test_positive_screen_needs_a_follow_up(ruleset):
    """Positive screen without follow-up: in the denominator, not the numerator."""
    populations = members(run_resources([*visit(), screen(POSITIVE)], ruleset))
    assert populations["denominator"] and not populations["numerator"]


@pytest.mark.parametrize(
    ("authored", "met"),
    [("2025-03-04T09:25:00Z", True), ("2025-03-06T17:00:00Z", True), ("2025-03-07T08:00:00Z", False)],
)
def test_referral_within_two_days_after_the_encounter(ruleset, authored, met):
    """Follow-up order: 'authoredOn 2 days or less on or after day of end of QualifyingEncounter.period'."""
    referral = request("ServiceRequest", "ref", "183524004", authored)
    assert members(run_resources([*visit(), screen(POSITIVE), referral], ruleset))["numerator"] is met


def test_antidepressant_order_is_a_follow_up(ruleset):
    """Follow-up: MedicationRequest in Adult Depression Medications, active/completed, intent order."""
    med = request("MedicationRequest", "med", "1000048", "2025-03-04T09:25:00Z", system=RXNORM)
    assert members(run_resources([*visit(), screen(POSITIVE), med], ruleset))["numerator"] is True


@pytest.mark.parametrize(
    ("performed", "met"), [("2025-03-04T09:20:00Z", True), ("2025-03-04T10:00:00Z", False)]
)
def test_follow_up_procedure_must_start_during_the_encounter(ruleset, performed, met):
    """Follow-up Procedure: 'start of performed during QualifyingEncounter.period' (time precision)."""
    followup = procedure("fu", "108313002", performed)
    assert members(run_resources([*visit(), screen(POSITIVE), followup], ruleset))["numerator"] is met


def test_later_positive_screen_supersedes_an_earlier_negative(ruleset):
    """'Most Recent ... Screening' is one screening across all qualifying encounters: the later positive
    wins."""
    resources = [
        patient(birth="1980-06-01"),
        encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z"),
        encounter("e2", "2025-09-04T09:00:00Z", end="2025-09-04T09:30:00Z"),
        coded_obs("s1", ADULT, "2025-03-04T09:05:00Z", value_code=NEGATIVE, category=None),
        coded_obs("s2", ADULT, "2025-09-04T09:05:00Z", value_code=POSITIVE, category=None),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is False


@pytest.mark.parametrize(
    ("code", "value", "kind", "met"),
    [
        ("44261-6", 9, "quantity", True),
        ("44261-6", 10, "integer", False),
        ("44261-6", "4", "string", True),
        ("55758-7", 2, "integer", True),
        ("55758-7", 3, "quantity", False),
    ],
)
def test_phq_totals_are_read_as_screens_at_their_cut_offs(ruleset, code, value, kind, met):
    """Deviation phq-totals: PHQ-9 total >= 10 and PHQ-2 total >= 3 are positive; below is negative; the total
    may arrive as valueQuantity, valueInteger or valueString. By the published logic (the default) a total
    is no screening at all."""
    total = coded_obs("scr", code, "2025-03-04T09:05:00Z", value=value, value_kind=kind, category="survey")
    on = frozenset({"phq-totals"})
    assert members(run_resources([*visit(), total], ruleset, deviations=on))["numerator"] is met
    assert members(run_resources([*visit(), total], ruleset))["numerator"] is False


def test_bipolar_on_the_problem_list_excludes(ruleset):
    """Denominator Exclusion: Bipolar Disorder as problem-list-item or health-concern starting before the
    encounter."""
    bipolar = condition("bp", "F31.9", onset="2020-01-01", category="problem-list-item")
    assert members(run_resources([*visit(), bipolar], ruleset))["denominator-exclusion"] is True
    as_encounter_diagnosis = condition("bp", "F31.9", onset="2020-01-01", category="encounter-diagnosis")
    assert (
        members(run_resources([*visit(), as_encounter_diagnosis], ruleset))["denominator-exclusion"] is False
    )
    after = condition("bp", "F31.9", onset="2025-06-01", category="health-concern")
    assert members(run_resources([*visit(), after], ruleset))["denominator-exclusion"] is False


def test_screening_declined_is_an_exception(ruleset):
    """Denominator Exceptions: ObservationNotDone (status cancelled) for the adult screening, reason declined
    (720834000), issued during the encounter, and no screening."""
    declined = not_done_obs("nd", ADULT, "720834000", "2025-03-04T09:10:00Z")
    populations = members(run_resources([*visit(), declined], ruleset))
    assert populations["denominator-exception"] is True and populations["numerator"] is False
    outside = not_done_obs("nd", ADULT, "720834000", "2025-03-05T09:10:00Z")
    assert members(run_resources([*visit(), outside], ruleset))["denominator-exception"] is False


def test_claims_codes_2025(ruleset):
    """MIPS 134: G8510 negative, G8431 positive with plan, G8511 positive without plan, G8432 not screened."""
    assert run_resources([*visit(), screen()], ruleset, program="mips-claims").measure_codes("CMS2") == [
        "G8510"
    ]
    assert run_resources([*visit(), screen(POSITIVE)], ruleset, program="mips-claims").measure_codes(
        "CMS2"
    ) == ["G8511"]
    assert run_resources(visit(), ruleset, program="mips-claims").measure_codes("CMS2") == ["G8432"]
    referral = request("ServiceRequest", "ref", "183524004", "2025-03-04T09:25:00Z")
    run = run_resources([*visit(), screen(POSITIVE), referral], ruleset, program="mips-claims")
    assert run.measure_codes("CMS2") == ["G8431"]
    bipolar = condition(
        "bp",
        "F31.9",
        onset="2020-01-01",
        category="problem-list-item",
        system="http://hl7.org/fhir/sid/icd-10-cm",
    )
    assert run_resources([*visit(), bipolar], ruleset, program="mips-claims").measure_codes("CMS2") == [
        "G9717"
    ]


def test_snomed_bipolar_code_also_excludes(ruleset):
    """Bipolar Disorder value set has SNOMED codes too."""
    bipolar = condition("bp", "13746004", onset="2020-01-01", category="problem-list-item", system=SNOMED)
    assert members(run_resources([*visit(), bipolar], ruleset))["denominator-exclusion"] is True
