"""MeasureReports: DEQM individual reports (indv-measurereport-deqm, domain.md §2.2) for every measure with a
published Measure resource, validated with fhir.resources R4B and carrying its group and population ids; and
--report summary (summary-measurereport-deqm) with counts and the proportion measureScore."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_cat2.cli import main

from .conftest import ROOT, bp_panel, coded_obs, condition, encounter, patient, run_resources, shared_path

DEQM = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition"


def by_measure(reports, fragment):
    return [r for r in reports if fragment in r["measure"]]


def counts(report, group=0):
    return {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][group]["population"]}


def test_individual_report_has_the_deqm_elements(ruleset):
    """Must-have status, type individual, measure canonical |version, subject, date, reporter, period;
    must-support counts, measureScore, evaluatedResource, improvementNotation, measureScoring/calculatedDate
    extensions."""
    resources = [patient(), condition("htn", "I10"), encounter(), bp_panel("bp", 128, 78)]
    [report] = by_measure(run_resources(resources, ruleset).reports, "ControllingHighBloodPressure")
    MeasureReport.model_validate(report)
    assert report["meta"]["profile"] == [f"{DEQM}/indv-measurereport-deqm"]
    assert (report["status"], report["type"]) == ("complete", "individual")
    assert report["measure"].endswith("|0.1.000") and report["subject"] == {"reference": "Patient/p1"}
    assert report["date"] and report["reporter"] and report["period"]["start"] == "2025-01-01"
    assert report["extension"][0]["url"] == f"{DEQM}/extension-measureScoring"
    group = report["group"][0]
    assert group["extension"][0]["url"] == f"{DEQM}/extension-calculatedDate"
    assert group["measureScore"] == {"value": 1.0}
    evidence = {e["reference"] for e in report["evaluatedResource"]}
    assert {"Observation/bp", "Condition/htn", "Encounter/e1", "Patient/p1"} <= evidence


def test_improvement_notation_comes_from_our_table_not_the_published_resource(ruleset):
    """The published groups all say code 'decrease' (display 'increase'); ours: CMS165 increase, CMS122
    decrease."""
    resources = [patient(), condition("htn", "I10"), condition("dm", "E11.9"), encounter()]
    reports = run_resources(resources, ruleset).reports
    assert (
        by_measure(reports, "ControllingHighBloodPressure")[0]["improvementNotation"]["coding"][0]["code"]
        == "increase"
    )
    assert (
        by_measure(reports, "DiabetesGlycemicStatus")[0]["improvementNotation"]["coding"][0]["code"]
        == "decrease"
    )


def test_excluded_patient_has_no_score(ruleset):
    """Proportion score = numerator / (denominator - exclusions - exceptions): nothing left to score when
    excluded."""
    resources = [patient(), condition("htn", "I10"), condition("p", "Z51.5", onset="2025-02-01"), encounter()]
    [report] = by_measure(run_resources(resources, ruleset).reports, "ControllingHighBloodPressure")
    assert counts(report)["denominator-exclusion"] == 1 and "measureScore" not in report["group"][0]


def test_three_groups_of_cms138_each_with_published_ids(ruleset):
    """CMS138 reports three groups whose ids and population ids equal the published Measure's."""
    resources = [
        patient(birth="1980-01-01"),
        encounter("a"),
        encounter("b", "2025-06-01T09:00:00Z"),
        coded_obs("s", "72166-2", value_code="449868002"),
    ]
    [report] = by_measure(run_resources(resources, ruleset).reports, "Tobacco")
    assert [g["id"] for g in report["group"]] == [
        "64e649752ad653247b573add",
        "64e649752ad653247b573ade",
        "64e649752ad653247b573adf",
    ]
    assert counts(report, 1)["denominator"] == 1 and counts(report, 1)["numerator"] == 0


def test_encounter_based_report_counts_episodes(ruleset):
    """CMS22 populationBasis Encounter: counts are episodes; score = met episodes / scored episodes."""
    resources = [
        patient(birth="1980-01-01"),
        encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z"),
        encounter("e2", "2025-06-04T09:00:00Z", end="2025-06-04T09:30:00Z"),
        bp_panel("b", 112, 72, "2025-03-04T09:10:00Z", eid=None),
    ]
    [report] = by_measure(run_resources(resources, ruleset).reports, "PCSBPScreening")
    MeasureReport.model_validate(report)
    assert counts(report)["initial-population"] == 2 and counts(report)["numerator"] == 1
    assert report["group"][0]["measureScore"] == {"value": 0.5}


def test_summary_report_adds_up_patients_and_scores(ruleset):
    """--report summary: one summary-measurereport-deqm per measure; score = 1 met / (3 - 1 excluded)."""
    resources = []
    for pid, sbp in (("a", 120), ("b", 150)):
        resources += [
            patient(pid),
            condition(f"h{pid}", "I10", pid=pid),
            encounter(f"e{pid}", pid=pid),
            bp_panel(f"bp{pid}", sbp, 80, pid=pid, eid=f"e{pid}"),
        ]
    resources += [
        patient("c"),
        condition("hc", "I10", pid="c"),
        encounter("ec", pid="c"),
        condition("pc", "Z51.5", pid="c", onset="2025-02-01"),
    ]
    run = run_resources(resources, ruleset, report="summary")
    [summary] = by_measure(run.reports, "ControllingHighBloodPressure")
    MeasureReport.model_validate(summary)
    assert summary["type"] == "summary" and "subject" not in summary
    assert summary["meta"]["profile"] == [f"{DEQM}/summary-measurereport-deqm"]
    assert counts(summary) == {
        "initial-population": 3,
        "denominator": 3,
        "denominator-exclusion": 1,
        "numerator": 1,
    }
    assert summary["group"][0]["measureScore"] == {"value": 0.5}
    assert all(r["type"] == "summary" for r in run.reports)
    published = [m for m in ruleset.table.measures if m.url is not None]  # MIPS 047 has no Measure
    assert len(run.reports) == len(published) and len(published) >= 10


def test_report_both_writes_individual_and_summary(ruleset):
    resources = [patient(), condition("htn", "I10"), encounter(), bp_panel("bp", 128, 78)]
    reports = by_measure(
        run_resources(resources, ruleset, report="both").reports, "ControllingHighBloodPressure"
    )
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


@pytest.fixture(scope="module")
def fixture_reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    assert (
        main(["replay", str(ROOT / "fixtures"), "--out", str(out), "--period", "2025", "--report", "both"])
        == 0
    )
    return [json.loads(line) for line in (out / "MeasureReport.ndjson").read_text().splitlines()]


@pytest.mark.parametrize(
    "name",
    [
        "ControllingHighBloodPressureFHIR",
        "PCSBPScreeningFollowUpFHIR",
        "PreventiveCareAndTobaccoUseScreeningAndCessationInterventionFHIR",
        "PCSDepressionScreenAndFollowUpFHIR",
        "PCSBMIScreenAndFollowUpFHIR",
        "FallsScreeningForFutureFallRiskFHIR",
        "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR",
    ],
)
def test_fixture_reports_carry_the_population_ids_of_the_published_measure(fixture_reports, name):
    """DEQM guidance: group.population.id equals the Measure's population id; every population has a count."""
    published = json.loads(shared_path("reference", "ecqm-measures", f"{name}.json").read_text())
    mine = [r for r in fixture_reports if r["measure"] == f"{published['url']}|{published['version']}"]
    assert mine, f"no report for {name}"
    for report in mine:
        MeasureReport.model_validate(report)
        assert [g["id"] for g in report["group"]] == [g["id"] for g in published["group"]]
        for ours, theirs in zip(report["group"], published["group"], strict=True):
            expected = {p["id"]: p["code"]["coding"][0]["code"] for p in theirs["population"]}
            assert {p["id"]: p["code"]["coding"][0]["code"] for p in ours["population"]} == expected
            assert all(isinstance(p["count"], int) for p in ours["population"])
