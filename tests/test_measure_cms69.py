"""CMS69 (MIPS 128) BMI screening and follow-up plan (PCSBMIScreenAndFollowUpFHIR 0.2.000)."""

from __future__ import annotations

import pytest

from .conftest import (
    CPT,
    ICD10,
    condition,
    encounter,
    not_done_obs,
    patient,
    procedure,
    quantity_obs,
    request,
    run_resources,
)


def visit(birth: str = "1980-06-01", start: str = "2025-03-04T09:00:00Z", **kw):
    return [patient(birth=birth), encounter(start=start, **kw)]


def bmi(oid: str, value: float, when: str = "2025-03-04T09:10:00Z", **kw):
    kw.setdefault("category", "vital-signs")
    return quantity_obs(oid, "39156-5", value, "kg/m2", when, **kw)


def members(run):
    return run.population("CMS69")


@pytest.mark.parametrize(("birth", "in_population"), [("2007-03-04", True), ("2007-03-05", False)])
def test_age_18_at_the_encounter_start(ruleset, birth, in_population):
    """Initial Population: AgeInYearsAt(date from start of QualifyingEncounter.period) >= 18 (not the
    period)."""
    assert members(run_resources(visit(birth=birth), ruleset))["initial-population"] is in_population


def test_virtual_encounters_do_not_qualify(ruleset):
    """Qualifying Encounter: class !~ virtual (v3 ActCode VR)."""
    assert members(run_resources(visit(klass="VR"), ruleset))["initial-population"] is False


@pytest.mark.parametrize(("value", "met"), [(18.5, True), (24.99, True), (25, False), (18.49, False)])
def test_normal_bmi_band(ruleset, value, met):
    """'Has Normal BMI': >= 18.5 and < 25 kg/m2, with no high or low BMI in the period."""
    assert members(run_resources([*visit(), bmi("b", value)], ruleset))["numerator"] is met


def test_a_high_bmi_elsewhere_in_the_period_spoils_normal(ruleset):
    """'Has Normal BMI' ... and not (exists high or low BMI in the period)."""
    resources = [
        *visit(),
        bmi("b1", 22, "2025-03-04T09:10:00Z"),
        bmi("b2", 27, "2025-08-01T09:10:00Z", eid=None),
    ]
    assert members(run_resources(resources, ruleset))["numerator"] is False


def test_high_bmi_with_follow_up_ordered_for_overweight(ruleset):
    """High BMI and Follow up Provided: ServiceRequest in Follow Up for Above Normal BMI with reasonCode
    overweight."""
    order = request(
        "ServiceRequest", "diet", "182922004", "2025-03-04T09:20:00Z", reason="E66.3", reason_system=ICD10
    )
    assert members(run_resources([*visit(), bmi("b", 31), order], ruleset))["numerator"] is True
    no_reason = request("ServiceRequest", "diet", "182922004", "2025-03-04T09:20:00Z")
    assert members(run_resources([*visit(), bmi("b", 31), no_reason], ruleset))["numerator"] is False


def test_high_bmi_follow_up_with_overweight_on_the_problem_list(ruleset):
    """Ordered branch: an active Overweight or Obese problem-list condition starting by the order's
    authoredOn."""
    order = request("ServiceRequest", "diet", "182922004", "2025-03-04T09:20:00Z")
    obese = condition("ob", "E66.01", onset="2024-01-01", category="problem-list-item")
    assert members(run_resources([*visit(), bmi("b", 36), order, obese], ruleset))["numerator"] is True
    later = condition("ob", "E66.01", onset="2025-06-01", category="problem-list-item")
    assert members(run_resources([*visit(), bmi("b", 36), order, later], ruleset))["numerator"] is False


def test_low_bmi_with_a_completed_dietitian_procedure_for_underweight(ruleset):
    """Low BMI and Follow up Provided: Procedure in Follow Up for Below Normal BMI, reason underweight,
    completed."""
    visit_ = procedure(
        "diet", "97802", "2025-03-04T09:20:00Z", system=CPT, reason="R63.6", reason_system=ICD10
    )
    assert members(run_resources([*visit(), bmi("b", 17.2), visit_], ruleset))["numerator"] is True
    planned = procedure(
        "diet",
        "97802",
        "2025-03-04T09:20:00Z",
        system=CPT,
        reason="R63.6",
        reason_system=ICD10,
        status="in-progress",
    )
    assert members(run_resources([*visit(), bmi("b", 17.2), planned], ruleset))["numerator"] is False


def test_active_pregnancy_excludes(ruleset):
    """Denominator Exclusions: Pregnancy or Other Related Diagnoses, clinicalStatus active, overlapping the
    period."""
    assert (
        members(run_resources([*visit(), condition("p", "O00.00", onset="2025-02-01")], ruleset))[
            "denominator-exclusion"
        ]
        is True
    )
    resolved = condition("p", "O00.00", onset="2025-02-01", status="resolved", abatement="2025-02-20")
    assert members(run_resources([*visit(), resolved], ruleset))["denominator-exclusion"] is False


def test_bmi_declined_on_the_encounter_day_is_an_exception(ruleset):
    """Denominator Exceptions: ObservationNotDone for BMI with reason Patient Declined, same day as the
    encounter."""
    declined = not_done_obs("nd", "39156-5", "105480006", "2025-03-04T09:15:00Z")
    populations = members(run_resources([*visit(), declined], ruleset))
    assert populations["denominator-exception"] is True
    next_day = not_done_obs("nd", "39156-5", "105480006", "2025-03-05T09:15:00Z")
    assert members(run_resources([*visit(), next_day], ruleset))["denominator-exception"] is False


def test_an_exception_gives_way_to_the_numerator(ruleset):
    """Proportion scoring: a denominator exception counts only for patients not in the numerator (a normal BMI
    and a declined one at the same visit: numerator, no exception)."""
    declined = not_done_obs("nd", "39156-5", "105480006", "2025-03-04T09:15:00Z")
    run = run_resources([*visit(), bmi("b", 22), declined], ruleset)
    assert members(run)["numerator"] is True
    assert members(run)["denominator-exception"] is False
    report = next(r for r in run.reports if "PCSBMIScreenAndFollowUp" in r["measure"])
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert counts["numerator"] == 1 and counts["denominator-exception"] == 0


def test_no_bmi_is_not_met(ruleset):
    """No BMI in the period: denominator, not numerator."""
    populations = members(run_resources(visit(), ruleset))
    assert populations["denominator"] and not populations["numerator"]


def test_claims_codes(ruleset):
    """MIPS 128: G8420 normal, G8417 high with plan, G8419 abnormal without plan, G8421 not documented."""
    assert run_resources([*visit(), bmi("b", 22)], ruleset, program="mips-claims").measure_codes("CMS69") == [
        "G8420"
    ]
    order = request(
        "ServiceRequest", "diet", "182922004", "2025-03-04T09:20:00Z", reason="E66.3", reason_system=ICD10
    )
    assert run_resources([*visit(), bmi("b", 31), order], ruleset, program="mips-claims").measure_codes(
        "CMS69"
    ) == ["G8417"]
    assert run_resources([*visit(), bmi("b", 31)], ruleset, program="mips-claims").measure_codes("CMS69") == [
        "G8419"
    ]
    assert run_resources(visit(), ruleset, program="mips-claims").measure_codes("CMS69") == ["G8421"]
