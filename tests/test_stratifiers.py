"""Stratifiers: a group's populations counted within each stratum of the published Measure (CMS130: ages
46-49 and 50-75 at the end of the period), in individual and summary MeasureReports."""

from __future__ import annotations

from .conftest import CPT, encounter, patient, procedure, run_resources

YOUNGER, OLDER = "736a0ff4-9544-4c88-88dd-76274cc3d540", "426f0691-b064-459c-9661-88dadc8d3f7b"


def people():
    return [
        patient("young", birth="1978-05-01"),  # 47
        encounter("e-young", pid="young"),
        patient("screened", birth="1965-05-01"),  # 60
        encounter("e-screened", pid="screened"),
        procedure("c", "44388", "2020-06-01T08:00:00Z", pid="screened", system=CPT),
        patient("unscreened", birth="1960-05-01"),  # 65
        encounter("e-unscreened", pid="unscreened"),
    ]


def strata(group):
    return {
        s["id"]: {p["code"]["coding"][0]["code"]: p["count"] for p in s["stratum"][0]["population"]}
        for s in group["stratifier"]
    }


def report_of(run, kind, patient=None):
    return next(
        r
        for r in run.reports
        if "ColonCancerScreening" in r["measure"]
        and r["type"] == kind
        and (patient is None or r["subject"]["reference"] == f"Patient/{patient}")
    )


def test_individual_reports_count_the_patient_in_their_stratum_only(ruleset):
    run = run_resources(people(), ruleset, measures=("CMS130",))
    young = strata(report_of(run, "individual", "young")["group"][0])
    assert young[YOUNGER]["initial-population"] == 1 and young[OLDER]["initial-population"] == 0
    screened = strata(report_of(run, "individual", "screened")["group"][0])
    assert screened[OLDER] == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    assert screened[YOUNGER]["numerator"] == 0


def test_the_summary_report_adds_up_each_stratum_with_its_own_score(ruleset):
    run = run_resources(people(), ruleset, measures=("CMS130",), report="summary")
    group = report_of(run, "summary")["group"][0]
    counts = strata(group)
    assert counts[YOUNGER] == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 0,
    }
    assert counts[OLDER] == {
        "initial-population": 2,
        "denominator": 2,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    scores = {s["id"]: s["stratum"][0].get("measureScore", {}).get("value") for s in group["stratifier"]}
    assert scores == {YOUNGER: 0.0, OLDER: 0.5}
    assert group["measureScore"]["value"] == round(1 / 3, 6)


def test_a_measure_without_stratifiers_writes_none(ruleset):
    run = run_resources(people(), ruleset, measures=("CMS139",), report="both")
    assert all("stratifier" not in g for r in run.reports for g in r["group"])
