"""CMS137 (MIPS 305) initiation and engagement of substance use disorder treatment
(InitiationandEngagementofSubstanceUseDisorderTreatmentFHIR 0.0.002): both groups on the first new SUD
episode, the initiation and engagement windows, the negative history, the age strata of the summary report,
explain, and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms137.py."""

from __future__ import annotations

from .conftest import encounter, patient, run_resources
from .oracle.cases import _isolated as isolated
from .oracle.cms137 import LONG_ACTING, adult, episode, order, psychotherapy
from .support.explain import explain_text
from .support.reports import strata_of, summary_of

URL = "https://madie.cms.gov/Measure/InitiationandEngagementofSubstanceUseDisorderTreatmentFHIR"
TEENS, ADULTS, SENIORS = (  # group 1 strata: 13-17, 18-64, 65 and older
    "14cb5b29-3b16-45f6-adc4-c076fb6493de",
    "a674c6ef-41d8-44a4-a560-a100fc3ecbc6",
    "32b4a9d9-dc33-4bff-a68b-787ee473162b",
)
ENGAGED = (
    psychotherapy("p1", "2025-04-02"),
    psychotherapy("p2", "2025-04-10"),
    psychotherapy("p3", "2025-05-06"),
)


def test_initiated_and_engaged_meets_both_groups(ruleset):
    run = run_resources(adult(*ENGAGED), ruleset)
    for group in (0, 1):
        assert run.population("CMS137", group=group) == {
            "initial-population": True,
            "denominator": True,
            "denominator-exclusion": False,
            "numerator": True,
        }


def test_initiation_window_ends_13_days_after_the_episode(ruleset):
    def initiated(day: str) -> bool:
        return run_resources(adult(psychotherapy("pt", day)), ruleset).outcome("CMS137") == "met"

    assert initiated("2025-04-01") and initiated("2025-04-14")
    assert not initiated("2025-04-15")


def test_engagement_counts_from_the_first_initiation(ruleset):
    def engaged(long_acting_day: str) -> str:
        resources = adult(psychotherapy("p1", "2025-04-02"), order("bup", "2025-04-10"))
        resources.append(order("xr", long_acting_day, LONG_ACTING))
        return run_resources(resources, ruleset).outcome("CMS137", group=1)

    assert engaged("2025-05-06") == "met"  # 34 days after 2 April
    assert engaged("2025-05-07") == "not-met"  # 35 days after 2 April, though 27 after 10 April


def test_a_treatment_in_the_60_days_before_is_no_new_episode(ruleset):
    def population(day: str) -> bool:
        resources = adult(psychotherapy("old", day), psychotherapy("pt", "2025-04-05"))
        return run_resources(resources, ruleset).population("CMS137")["initial-population"]

    assert population("2025-01-31") is False  # 60 days before 1 April
    assert population("2025-01-30") is True


def test_summary_report_counts_each_group_and_age_stratum(ruleset):
    teen = isolated("t1", [patient(birth="2010-05-01"), *episode(), *ENGAGED])
    senior = isolated("s1", [patient(birth="1950-05-01"), *episode()])
    run = run_resources([*teen, *senior], ruleset, report="both", measures=("CMS137",))
    for group in summary_of(run, f"{URL}|0.0.002")["group"]:
        strata = strata_of(group)
        teens = next(v for k, v in strata.items() if k in (TEENS, "b6c71573-42ed-4305-9a39-2cdff748cf57"))
        seniors = next(v for k, v in strata.items() if k in (SENIORS, "47be3929-6f47-4a4c-93d6-2323d6f6fe80"))
        assert teens["initial-population"] == 1 and teens["numerator"] == 1
        assert seniors["initial-population"] == 1 and seniors["numerator"] == 0


def test_no_quality_data_codes(ruleset):
    resources = adult(*ENGAGED)
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS137") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS137") == []


def test_explain_names_the_episode_and_the_first_initiation(tmp_path, capsys):
    resources = adult(psychotherapy("p1", "2025-04-02"), psychotherapy("p2", "2025-04-10"))
    resources.append(encounter("later", "2025-06-01T09:00:00Z"))
    text = explain_text(tmp_path, capsys, "CMS137", resources)
    assert "CMS137 / MIPS 305" in text
    assert "Encounter/ep" in text and "Procedure/p1" in text
    assert "The first new SUD episode, with engagement after the first initiation" in text
    assert "Two or more treatments 1 to 34 days after the initiation" in text
