"""CMS144 (MIPS 008) heart failure beta-blocker therapy for LVSD: what the reference engine cannot see
(MeasureReport shape, explain trail, no claims codes); its populations are cross-checked in tests/oracle."""

from __future__ import annotations

import json

from fhir_cat2.cli import main

from .conftest import run_resources
from .oracle.heart import heart_failure_patient, medication

URL = "https://madie.cms.gov/Measure/HFBetaBlockerTherapyforLVSDFHIR"
GROUP = "664396d3f4fc785d87117076"
CARVEDILOL = "200031"


def treated() -> list[dict]:
    return [*heart_failure_patient(), medication("bb", CARVEDILOL)]


def test_individual_report_has_the_published_ids_and_the_order_as_evidence(ruleset):
    run = run_resources(treated(), ruleset, measures=("CMS144",))
    (report,) = run.reports
    assert report["measure"] == f"{URL}|1.4.000"
    (group,) = report["group"]
    assert group["id"] == GROUP
    counts = {p["code"]["coding"][0]["code"]: (p["id"], p["count"]) for p in group["population"]}
    assert counts == {
        "initial-population": ("1B625C4B-96F3-482D-B676-063B9144144F", 1),
        "denominator": ("2AEA621A-A4FE-41F1-B8A9-35B186B2C37E", 1),
        "denominator-exclusion": ("210258BE-E94A-433B-BD61-03599A8A7456", 0),
        "denominator-exception": ("3E48AAB1-F6FD-4282-AA01-852B65F2C20F", 0),
        "numerator": ("50F7F79A-C9F5-4BD0-89AD-A4027A745D90", 1),
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
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in treated()]}
    (tmp_path / "p1.json").write_text(json.dumps(bundle))
    args = ["explain", str(tmp_path), "--patient", "p1", "--measure", "CMS144", "--period", "2025"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "CMS144 / MIPS 008" in text
    assert "MET" in text
    assert "Beta-blocker ordered on the day of a heart failure encounter with LVSD" in text
    assert "MedicationRequest/bb" in text
