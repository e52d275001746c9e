"""CMS135 (MIPS 005) heart failure ACE inhibitor, ARB or ARNI therapy for LVSD: MeasureReport ids, explain
trail of an exception, no claims codes; populations are cross-checked in tests/oracle."""

from __future__ import annotations

import json

from fhir_cat2.cli import main

from .conftest import SNOMED, run_resources
from .oracle.heart import confirmed, heart_failure_patient, medication

URL = "https://madie.cms.gov/Measure/HFACEIorARBorARNIforLVSDFHIR"


def test_report_ids_and_currently_taking_counts(ruleset):
    taking = medication("ace", "197884", "2024-06-01T09:00:00Z", bounds=("2024-06-01", None))
    run = run_resources([*heart_failure_patient(), taking], ruleset, measures=("CMS135",))
    (report,) = run.reports
    assert report["measure"] == f"{URL}|0.2.000"
    (group,) = report["group"]
    assert group["id"] == "66439e60f4fc785d8711709d"
    ids = {p["code"]["coding"][0]["code"]: p["id"] for p in group["population"]}
    assert ids["numerator"] == "7D54F1D4-B384-4767-B4AE-8C7A7485E451"
    assert ids["denominator-exception"] == "DE2E56E0-D526-4D66-B5F1-8652C48A6CF3"
    assert run.counts("CMS135")["numerator"] == 1


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources(
        [*heart_failure_patient(), medication("ace", "197884")],
        ruleset,
        program="mips-claims",
        measures=("CMS135",),
    )
    assert run.population("CMS135")["numerator"]
    assert run.measure_codes("CMS135") == []


def test_explain_names_the_renal_failure_exception(tmp_path, capsys):
    resources = [*heart_failure_patient(), confirmed("arf", "422593004", system=SNOMED, onset="2025-01-10")]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    (tmp_path / "p1.json").write_text(json.dumps(bundle))
    args = ["explain", str(tmp_path), "--patient", "p1", "--measure", "CMS135", "--period", "2025", "--full"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "CMS135 / MIPS 005" in text
    assert (
        "Acute renal failure caused by an ACE inhibitor overlapping a heart failure encounter with LVSD"
        in text
    )
    assert "Condition/arf" in text
