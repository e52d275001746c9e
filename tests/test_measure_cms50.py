"""CMS50 (MIPS 374) closing the referral loop, receipt of specialist report (CRLReceiptofSpecialistReportFHIR
0.3.000): the first referral of the period to 31 October, the consultant report Task based on it; reports,
explain, and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms50.py."""

from __future__ import annotations

import json
import uuid

from fhir_cat2.cli import main

from .conftest import run_resources
from .oracle.cms50 import referral, referred, report
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/CRLReceiptofSpecialistReportFHIR"


def test_a_report_for_the_referral_is_met_and_reports_every_population(ruleset):
    run = run_resources(referred(report()), ruleset, report="both")
    assert run.population("CMS50") == {"initial-population": True, "denominator": True, "numerator": True}
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.3.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_only_the_first_referral_counts(ruleset):
    later = referral("ref2", "2025-05-01T10:00:00Z")
    assert run_resources([*referred(), later, report(based_on="ref2")], ruleset).outcome("CMS50") == "not-met"
    assert run_resources([*referred(), later, report()], ruleset).outcome("CMS50") == "met"


def test_the_referral_window_ends_on_october_31(ruleset):
    def population(day: str) -> bool:
        resources = referred(report(ends="2025-11-20T10:00:00Z"), authored=f"{day}T09:30:00Z")
        return run_resources(resources, ruleset).population("CMS50")["initial-population"]

    assert population("2025-10-31") is True
    assert population("2025-11-01") is False


def test_the_report_must_end_after_the_referral_in_the_period(ruleset):
    def outcome(ends: str) -> str:
        return run_resources(referred(report(ends=ends, starts=ends)), ruleset).outcome("CMS50")

    assert outcome("2025-03-04T09:00:00Z") == "not-met"  # the referral was authored at 09:30
    assert outcome("2025-03-04T16:00:00Z") == "met"
    assert outcome("2026-01-02T10:00:00Z") == "not-met"


def test_no_quality_data_codes(ruleset):
    resources = referred(report())
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS50") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS50") == []


def test_explain_names_the_referral_and_the_report(tmp_path, capsys):
    resources = referred(report(based_on="elsewhere"))
    text = explain_text(tmp_path, capsys, "CMS50", resources)
    assert "CMS50 / MIPS 374" in text
    assert "ServiceRequest/ref" in text
    assert "Consultant report received for the first referral" in text
    assert "based on the referral" in text


def test_a_report_based_on_a_urn_uuid_reference_is_linked(tmp_path, capsys):
    """In a transaction-style Bundle the Task's basedOn names the referral by its fullUrl: read as
    resolved, it is the same referral."""

    def urn(resource_type: str, rid: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{resource_type}/{rid}')}"

    def rewrite(value):
        if isinstance(value, dict):
            out = {k: rewrite(v) for k, v in value.items()}
            if isinstance(value.get("reference"), str):
                out["reference"] = urn(*value["reference"].split("/"))
            return out
        return [rewrite(v) for v in value] if isinstance(value, list) else value

    entries = [
        {"fullUrl": urn(r["resourceType"], r["id"]), "resource": rewrite(r)} for r in referred(report())
    ]
    (tmp_path / "b.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    argv = ["explain", str(tmp_path), "--patient", "p1", "--measure", "CMS50", "--period", "2025"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "NOT MET" not in text and "MET" in text
    assert "1 matching Task (based on the referral)" in text
