"""CMS144 (MIPS 008) heart failure beta-blocker therapy for LVSD: what the reference engine cannot see
(report counts and evidence, explain trail, no claims codes); its populations are cross-checked in
tests/oracle."""

from __future__ import annotations

import json

from .conftest import run_resources
from .oracle.heart import heart_failure_patient, medication
from .support.explain import explain_text

CARVEDILOL = "200031"


def treated() -> list[dict]:
    return [*heart_failure_patient(), medication("bb", CARVEDILOL)]


def test_individual_report_counts_and_the_order_as_evidence(ruleset):
    run = run_resources(treated(), ruleset, measures=("CMS144",))
    (report,) = run.reports
    (group,) = report["group"]
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    assert counts == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 0,
        "denominator-exception": 0,
        "numerator": 1,
    }
    refs = {e["reference"] for e in report.get("evaluatedResource", [])}
    assert "MedicationRequest/bb" in refs


def test_summary_scores_treated_over_denominator(ruleset):
    untreated = [
        {**r, "id": "p2"} if r["resourceType"] == "Patient" else _for("p2", r)
        for r in heart_failure_patient()
    ]
    run = run_resources([*treated(), *untreated], ruleset, report="summary", measures=("CMS144",))
    (summary,) = run.reports
    assert summary["type"] == "summary"
    (group,) = summary["group"]
    assert group["measureScore"]["value"] == 0.5


def _for(pid: str, resource: dict) -> dict:
    """The resource for patient ``pid``, under its own id."""
    text = json.dumps(resource).replace('"Patient/p1"', f'"Patient/{pid}"')
    return {**json.loads(text), "id": f"{pid}-{resource['id']}"}


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources(treated(), ruleset, program="mips-claims", measures=("CMS144",))
    assert run.population("CMS144")["numerator"]
    assert run.measure_codes("CMS144") == []


def test_explain_names_the_order_and_the_heart_failure_visit(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS144", treated())
    assert "CMS144 / MIPS 008" in text
    assert "MET" in text
    assert "Beta-blocker ordered on the day of a heart failure encounter with LVSD" in text
    assert "MedicationRequest/bb" in text
