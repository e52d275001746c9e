"""CMS951 (MIPS 488) kidney health evaluation: report counts and evidence, explain trail, no claims codes;
populations are cross-checked in tests/oracle."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms951 import diabetic, egfr, uacr


def test_report_counts_and_numerator_evidence(ruleset):
    run = run_resources([*diabetic(), egfr(), uacr()], ruleset, measures=("CMS951",))
    (report,) = run.reports
    (group,) = report["group"]
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    assert counts["numerator"] == 1
    assert counts["denominator-exclusion"] == 0
    refs = {e["reference"] for e in report.get("evaluatedResource", [])}
    assert {"Observation/egfr", "Observation/uacr"} <= refs


def test_not_met_without_the_urine_test(ruleset):
    run = run_resources([*diabetic(), egfr()], ruleset, measures=("CMS951",))
    assert run.population("CMS951")["denominator"]
    assert not run.population("CMS951")["numerator"]


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources([*diabetic(), egfr(), uacr()], ruleset, program="mips-claims", measures=("CMS951",))
    assert run.measure_codes("CMS951") == []
