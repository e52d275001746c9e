"""CMS68 (MIPS 130) documentation of current medications (DocumentationofCurrentMedicationsFHIR 0.2.000):
each qualifying encounter is an episode; MeasureReports, explain and the 2019-2022 claims codes."""

from __future__ import annotations

from .conftest import QICORE, encounter, patient, procedure, run_resources
from .support.explain import explain_text

MEDS = "428191000124101"
MEDICAL_REASON = "183932001"
URL = "https://madie.cms.gov/Measure/DocumentationofCurrentMedicationsFHIR"


def visit(eid: str = "e1", start: str = "2025-03-04T09:00:00Z", end: str = "2025-03-04T09:40:00Z", **kw):
    return encounter(eid, start, end=end, **kw)


def documented(rid: str = "meds", when: str = "2025-03-04T09:20:00Z", **kw):
    return procedure(rid, MEDS, when, **kw)


def not_documented(rid: str = "nd", recorded: str = "2025-03-04T09:15:00Z", reason: str = MEDICAL_REASON):
    resource = procedure(rid, MEDS, None, status="not-done", reason=reason)
    resource["extension"] = [{"url": f"{QICORE}/qicore-recorded", "valueDateTime": recorded}]
    return resource


def test_each_visit_is_an_episode(ruleset):
    """Two visits, the second documented: 2 in the denominator, 1 in the numerator."""
    resources = [patient(), visit(), visit("e2", "2025-06-10T14:00:00Z", "2025-06-10T14:30:00Z")]
    counts = run_resources([*resources, documented(when="2025-06-10T14:10:00Z")], ruleset).counts("CMS68")
    assert counts == {"initial-population": 2, "denominator": 2, "numerator": 1, "denominator-exception": 0}


def test_documentation_must_end_during_the_visit_to_the_minute(ruleset):
    """'ends during QualifyingEncounter.period' has no day precision: 10 minutes after the visit ended is
    outside it."""
    late = run_resources([patient(), visit(), documented(when="2025-03-04T09:50:00Z")], ruleset)
    assert late.counts("CMS68")["numerator"] == 0


def test_not_done_with_a_medical_reason_recorded_during_the_visit_is_an_exception(ruleset):
    """Denominator Exceptions: ProcedureNotDone, reasonCode in Medical Reason, recorded (extension) during
    the visit; recorded the next day it is not."""
    assert (
        run_resources([patient(), visit(), not_documented()], ruleset).counts("CMS68")[
            "denominator-exception"
        ]
        == 1
    )
    next_day = not_documented(recorded="2025-03-05T09:15:00Z")
    assert (
        run_resources([patient(), visit(), next_day], ruleset).counts("CMS68")["denominator-exception"] == 0
    )


def test_individual_and_summary_reports(ruleset):
    """An encounter-based report counts episodes; the summary scores 1 met of 2 (one exception)."""
    resources = [
        patient("a"),
        visit("ea", pid="a"),
        documented("ma", pid="a"),
        patient("b"),
        visit("eb", pid="b"),
        visit("eb2", "2025-05-01T09:00:00Z", "2025-05-01T09:30:00Z", pid="b"),
        not_documented("nb", "2025-05-01T09:10:00Z") | {"subject": {"reference": "Patient/b"}},
    ]
    run = run_resources(resources, ruleset, report="both")
    individual = [r for r in run.reports if r["measure"] == f"{URL}|0.2.000" and r["type"] == "individual"]
    assert len(individual) == 2
    [summary] = [r for r in run.reports if r["measure"] == f"{URL}|0.2.000" and r["type"] == "summary"]
    populations = {p["code"]["coding"][0]["code"]: p["count"] for p in summary["group"][0]["population"]}
    assert populations == {
        "initial-population": 3,
        "denominator": 3,
        "denominator-exception": 1,
        "numerator": 1,
    }
    assert summary["group"][0]["measureScore"] == {"value": 0.5}


def test_claims_codes_2019_to_2022_only(ruleset):
    """MIPS 130 is in the claims single-source files 2019-2022 (G8427 met, G8428 not met, G8430 exception,
    age 18+), not 2023-2025."""
    resources = [
        patient(birth="1970-01-01"),
        visit(start="2022-03-04T09:00:00Z", end="2022-03-04T09:40:00Z"),
        documented(when="2022-03-04T09:20:00Z"),
        visit("e2", "2022-06-01T09:00:00Z", "2022-06-01T09:40:00Z"),
        visit("e3", "2022-09-01T09:00:00Z", "2022-09-01T09:40:00Z"),
        not_documented(recorded="2022-09-01T09:10:00Z"),
    ]
    run = run_resources(resources, ruleset, period=2022, program="mips-claims")
    assert run.measure_codes("CMS68", "e1") == ["G8427"]
    assert run.measure_codes("CMS68", "e2") == ["G8428"]
    assert run.measure_codes("CMS68", "e3") == ["G8430"]
    child = [patient(birth="2012-01-01"), *resources[1:]]
    assert run_resources(child, ruleset, period=2022, program="mips-claims").measure_codes("CMS68") == []
    in_2025 = [patient(), visit(), documented()]
    assert run_resources(in_2025, ruleset, program="mips-claims").measure_codes("CMS68") == []


def test_explain_names_the_documentation(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS68", [patient(), visit(), documented()])
    assert "episode Encounter/e1" in text
    assert "in the numerator because:" in text
    assert "Current medications documented during the encounter: 1 matching Procedure" in text
    assert "Procedure/meds: code 428191000124101, status completed" in text
    assert "The qualifying encounter: 1 matching Encounter (the encounter itself)" in text
