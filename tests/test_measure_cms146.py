"""CMS146 (MIPS 066) appropriate testing for pharyngitis (AppropriateTestingforPharyngitisFHIR 0.1.001): each
qualifying visit with an antibiotic ordered within 3 days and pharyngitis starting during it is an episode;
MeasureReports with the three age strata, the window edges, the exclusions, explain, and no claims codes
(MIPS 066 is in no claims single-source file)."""

from __future__ import annotations

from .conftest import patient, run_resources
from .oracle.respiratory import (
    COMPETING,
    PHARYNGITIS,
    antibiotic,
    diagnosis,
    strep_test,
    visit,
)
from .support.explain import explain_text
from .support.reports import counts_of, strata_of, summary_of

URL = "https://madie.cms.gov/Measure/AppropriateTestingforPharyngitisFHIR"
STRATA = (
    "18dd47f3-ccdf-4589-a0c7-d1083354107a",
    "3907dad8-2399-472e-a249-f40532df2f56",
    "7a217cf9-10ad-40ae-b8d7-de0a2ba0f4f0",
)


def episode(pid: str = "p1", birth: str = "1990-05-01", eid: str = "e1", day: str = "2025-03-04"):
    return [
        patient(pid, birth=birth),
        visit(eid, f"{day}T09:00:00Z", f"{day}T09:30:00Z", pid=pid),
        diagnosis(f"ph-{eid}", PHARYNGITIS, f"{day}T09:05:00Z", pid=pid),
        antibiotic(f"abx-{eid}", f"{day}T09:25:00Z", pid=pid),
    ]


def test_summary_counts_episodes_and_age_strata(ruleset):
    resources = [
        *episode("p1", "2015-06-01"),  # 9
        strep_test(pid="p1"),
        *episode("p2", "1990-05-01"),  # 34, untested
        *episode("p3", "1950-05-01"),  # 74
        strep_test(pid="p3"),
    ]
    run = run_resources(resources, ruleset, report="both", measures=("CMS146",))
    [group] = summary_of(run, f"{URL}|0.1.001")["group"]
    assert counts_of(group["population"]) == {
        "initial-population": 3,
        "denominator": 3,
        "denominator-exclusion": 0,
        "numerator": 2,
    }
    strata = strata_of(group)
    assert [strata[i]["initial-population"] for i in STRATA] == [1, 1, 1]
    assert [strata[i]["numerator"] for i in STRATA] == [1, 0, 1]


def test_strep_test_within_3_days_of_the_visit_end(ruleset):
    for when, met in (
        ("2025-03-01T00:00:00Z", 1),
        ("2025-02-28T23:00:00Z", 0),
        ("2025-03-07T23:00:00Z", 1),
        ("2025-03-08T00:00:00Z", 0),
    ):
        run = run_resources([*episode(), strep_test(when)], ruleset, measures=("CMS146",))
        assert run.counts("CMS146")["numerator"] == met, when


def test_antibiotic_from_the_visit_day_to_3_days_after(ruleset):
    for authored, episodes in (
        ("2025-03-07T23:00:00Z", 1),
        ("2025-03-08T00:30:00Z", 0),
        ("2025-03-03T23:00:00Z", 0),
    ):
        resources = [*episode()[:3], antibiotic(authored=authored)]
        run = run_resources(resources, ruleset, measures=("CMS146",))
        assert run.counts("CMS146")["initial-population"] == episodes, authored


def test_exclusions_prior_active_antibiotic_and_competing_diagnosis(ruleset):
    prior = antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10)
    assert run_resources([*episode(), prior], ruleset).counts("CMS146")["denominator-exclusion"] == 1
    prior_done = antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10, status="completed")
    assert run_resources([*episode(), prior_done], ruleset).counts("CMS146")["denominator-exclusion"] == 0
    competing = diagnosis("cd", COMPETING, "2025-03-06T10:00:00Z")
    excluded = run_resources([*episode(), competing, strep_test()], ruleset)
    assert excluded.counts("CMS146") == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 1,
        "numerator": 0,
    }


def test_no_claims_codes(ruleset):
    run = run_resources([*episode(), strep_test()], ruleset, program="mips-claims")
    assert run.measure_codes("CMS146") == []
    assert ruleset.measure("CMS146").groups[0].claims == ()


def test_explain_names_the_missing_strep_test(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS146", episode())
    assert "Acute pharyngitis or tonsillitis starting during the visit's days" in text
    assert "no matching Observation" in text
