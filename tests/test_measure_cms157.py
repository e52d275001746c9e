"""CMS157 (MIPS 143) oncology pain intensity quantified (OncologyPainIntensityQuantifiedFHIR 0.1.000): two
encounter-based groups (office visits during chemotherapy, radiation treatment management); MeasureReports
with both groups, explain, and no claims codes (MIPS 143 is in no claims single-source file)."""

from __future__ import annotations

from .conftest import CPT, coded_obs, condition, encounter, patient, procedure, run_resources
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/OncologyPainIntensityQuantifiedFHIR"


def chemo(rid: str, when: str):
    return procedure(rid, "96413", when, system=CPT)


def pain(when: str = "2025-03-04T09:20:00Z", oid: str = "pain"):
    return coded_obs(oid, "72514-3", when, value=4, category=None)


def office(eid: str = "e1", start: str = "2025-03-04T09:00:00Z"):
    return encounter(eid, start, end=start.replace("T09:00", "T09:40"))


def radiation(eid: str = "rt", start: str = "2025-03-10T09:00:00Z", cpt: str = "77431"):
    return encounter(eid, start, end=start.replace("T09:00", "T09:30"), cpt=cpt)


ON_CHEMO = [
    patient(birth="1965-02-01"),
    condition("ca", "C50.911", onset="2024-11-01"),
    chemo("c1", "2025-02-20T10:00:00Z"),
    chemo("c2", "2025-03-20T10:00:00Z"),
]


def test_group_1_needs_chemotherapy_before_and_after_the_visit_on_different_days(ruleset):
    run = run_resources([*ON_CHEMO, office(), pain()], ruleset)
    assert run.counts("CMS157", group=0) == {"initial-population": 1, "denominator": 1, "numerator": 1}
    assert run.counts("CMS157", group=1)["initial-population"] == 0  # an office visit is not radiation
    same_day = [*ON_CHEMO[:2], chemo("c1", "2025-03-04T11:00:00Z"), office()]
    assert run_resources(same_day, ruleset).counts("CMS157")["initial-population"] == 0
    visit_day_and_after = [*same_day, chemo("c2", "2025-03-18T10:00:00Z")]
    assert run_resources(visit_day_and_after, ruleset).counts("CMS157")["initial-population"] == 1


def test_group_2_five_treatments_reads_the_6_days_before_its_start(ruleset):
    """CPT 77427: pain assessed 6 days or less before the encounter's start day; other radiation
    management: on the encounter's days."""
    base = [patient(birth="1958-07-01"), condition("ca", "C61", onset="2024-11-01")]
    week_before = pain("2025-03-04T09:00:00Z")
    assert (
        run_resources([*base, radiation(cpt="77427"), week_before], ruleset).counts("CMS157", group=1)[
            "numerator"
        ]
        == 1
    )
    assert (
        run_resources([*base, radiation(), week_before], ruleset).counts("CMS157", group=1)["numerator"] == 0
    )
    that_day = pain("2025-03-10T15:00:00Z")
    assert run_resources([*base, radiation(), that_day], ruleset).counts("CMS157", group=1)["numerator"] == 1
    seven_days = pain("2025-03-03T09:00:00Z")
    assert (
        run_resources([*base, radiation(cpt="77427"), seven_days], ruleset).counts("CMS157", group=1)[
            "numerator"
        ]
        == 0
    )


def test_reports_carry_both_groups(ruleset):
    resources = [*ON_CHEMO, office(), radiation(), pain()]
    run = run_resources(resources, ruleset, report="both")
    [individual] = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000" and r["type"] == "individual"]
    counts = [
        {p["code"]["coding"][0]["code"]: p["count"] for p in g["population"]} for g in individual["group"]
    ]
    assert counts == [
        {"initial-population": 1, "denominator": 1, "numerator": 1},
        {"initial-population": 1, "denominator": 1, "numerator": 0},
    ]
    [summary] = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000" and r["type"] == "summary"]
    assert [g["measureScore"] for g in summary["group"]] == [{"value": 1.0}, {"value": 0.0}]


def test_no_claims_codes(ruleset):
    run = run_resources([*ON_CHEMO, office(), pain()], ruleset, program="mips-claims")
    assert run.measure_codes("CMS157") == []


def test_explain_names_the_chemotherapy(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS157", [*ON_CHEMO, office()])
    assert "episode Encounter/e1" in text
    assert "The encounter is an office visit: 1 matching Encounter (the encounter itself)" in text
    assert "Procedure/c1" in text and "Procedure/c2" in text
    assert "Standardized pain assessment with a result during the encounter: no matching Observation" in text
