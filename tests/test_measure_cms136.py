"""CMS136 (MIPS 366) follow-up care for children prescribed ADHD medication
(FollowUpCareforChildrenPrescribedADHDMedicationADDFHIR 0.1.001): the IPSD with its negative medication
history, the initiation visit window, 210 days of medication with each drug's orders rolled out, two
continuation visit days, the principal-diagnosis inpatient stay; MeasureReports of both groups, explain, and
no quality-data codes. Populations are cross-checked with the reference engine in tests/oracle/cms136.py."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms136 import (
    CONTINUATION,
    EIGHT_MONTHS,
    GUANFACINE,
    IPSD,
    VIRTUAL,
    child,
    inpatient,
    order,
    visit,
)
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/FollowUpCareforChildrenPrescribedADHDMedicationADDFHIR"


def outcomes(resources, ruleset):
    run = run_resources(resources, ruleset)
    return run.outcome("CMS136", group=0), run.outcome("CMS136", group=1)


def test_both_groups_met_and_every_population_reported(ruleset):
    run = run_resources(child(*CONTINUATION, meds=EIGHT_MONTHS), ruleset, report="both")
    for group in (0, 1):
        assert run.population("CMS136", group=group) == {
            "initial-population": True,
            "denominator": True,
            "denominator-exclusion": False,
            "numerator": True,
        }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.1.001"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_initiation_visit_from_the_day_after_the_ipsd_to_day_30(ruleset):
    assert run_resources(child(follow_up=IPSD), ruleset).outcome("CMS136") == "not-met"
    assert run_resources(child(follow_up="2024-10-01"), ruleset).outcome("CMS136") == "met"
    assert run_resources(child(follow_up="2024-10-02"), ruleset).outcome("CMS136") == "not-met"


def test_continuation_needs_210_days_each_drug_rolled_out(ruleset):
    def in_group_2(*meds):
        run = run_resources(child(*CONTINUATION, meds=list(meds)), ruleset)
        return run.population("CMS136", group=1)["initial-population"]

    assert in_group_2(order("o1", IPSD, 210)) is True
    assert in_group_2(order("o1", IPSD, 209)) is False
    assert in_group_2(order("o1", IPSD, 120), order("o2", IPSD, 120)) is True  # same drug: end to end
    assert in_group_2(order("o1", IPSD, 120), order("o2", IPSD, 120, code=GUANFACINE)) is False


def test_two_continuation_visit_days_one_may_be_virtual(ruleset):
    assert outcomes(child(*CONTINUATION, meds=EIGHT_MONTHS), ruleset) == ("met", "met")
    same_day = [CONTINUATION[0], visit("e3", "2024-11-01", cpt="99214")]
    assert outcomes(child(*same_day, meds=EIGHT_MONTHS), ruleset) == ("met", "not-met")
    with_virtual = [CONTINUATION[0], visit("e3", "2025-01-10", cpt=VIRTUAL)]
    assert outcomes(child(*with_virtual, meds=EIGHT_MONTHS), ruleset) == ("met", "met")
    only_virtual = [visit("e2", "2024-11-01", cpt=VIRTUAL), visit("e3", "2025-01-10", cpt=VIRTUAL)]
    assert outcomes(child(*only_virtual, meds=EIGHT_MONTHS), ruleset) == ("met", "not-met")


def test_negative_medication_history(ruleset):
    earlier = order("o0", "2024-02-01", 60)
    resources = child(
        meds=[earlier, order("o1", "2024-04-01")], first_visit="2024-03-20", follow_up="2024-04-10"
    )
    assert run_resources(resources, ruleset).population("CMS136")["initial-population"] is False
    ended = order("o0", "2023-11-03", 30)  # ends IPSD-121 days
    resources = child(
        meds=[ended, order("o1", "2024-04-01")], first_visit="2024-03-20", follow_up="2024-04-10"
    )
    assert run_resources(resources, ruleset).outcome("CMS136") == "met"


def test_a_principal_mental_health_inpatient_stay_leaves_the_population(ruleset):
    def populations(stay):
        run = run_resources(child(*CONTINUATION, *stay, meds=EIGHT_MONTHS), ruleset)
        return tuple(run.population("CMS136", group=g)["initial-population"] for g in (0, 1))

    assert populations(inpatient("2024-09-11")) == (False, False)
    assert populations(inpatient("2024-12-10")) == (True, False)
    assert populations(inpatient("2024-09-11", rank=2)) == (True, True)
    assert populations(inpatient("2024-09-11", use="AD")) == (True, True)


def test_no_quality_data_codes(ruleset):
    resources = child(*CONTINUATION, meds=EIGHT_MONTHS)
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS136") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS136") == []


def test_explain_shows_the_days_covered(tmp_path, capsys):
    resources = child(*CONTINUATION, meds=EIGHT_MONTHS)
    text = explain_text(tmp_path, capsys, "CMS136", resources)
    assert "CMS136 / MIPS 366" in text
    assert "MedicationRequest/o1" in text
    assert "covering 240 days of 2024-09-01..2025-06-28 (needs >= 210)" in text
