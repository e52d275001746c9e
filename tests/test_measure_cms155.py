"""CMS155 (MIPS 239) weight assessment and counseling for children and adolescents: three groups on one
initial population, each stratified by age; EHR only (no claims codes)."""

from __future__ import annotations

from .conftest import CPT, encounter, patient, procedure, quantity_obs, run_resources


def child(birth="2015-05-01"):
    return [
        patient(birth=birth),
        encounter(cpt="99393"),
        quantity_obs("bmi", "39156-5", 17.2, "kg/m2", category="vital-signs"),
        quantity_obs("ht", "8302-2", 132, "cm", category="vital-signs"),
        quantity_obs("wt", "29463-7", 30, "kg", category="vital-signs"),
        procedure("n", "97802", "2025-03-04T09:20:00Z", system=CPT),
    ]


def test_three_groups_with_their_own_numerators(ruleset):
    run = run_resources(child(), ruleset, measures=("CMS155",))
    assert [run.population("CMS155", group=i)["numerator"] for i in range(3)] == [True, True, False]
    assert len([r for r in run.reports if "WeightAssessment" in r["measure"]]) == 1


def test_each_group_is_stratified_by_age(ruleset):
    run = run_resources(child("2010-05-01"), ruleset, measures=("CMS155",))  # 15: stratum 12-17
    (report,) = run.reports
    for group in report["group"]:
        younger, older = group["stratifier"]
        count = {s["id"]: s["stratum"][0]["population"][0]["count"] for s in (younger, older)}
        assert count == {younger["id"]: 0, older["id"]: 1}


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources(child(), ruleset, program="mips-claims", measures=("CMS155",))
    assert run.measure_codes("CMS155") == []
