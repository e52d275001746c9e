"""CMS951 (MIPS 488) kidney health evaluation: MeasureReport ids and explain trail, no claims codes;
populations are cross-checked in tests/oracle."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms951 import diabetic, egfr, uacr

URL = "https://madie.cms.gov/Measure/KidneyHealthEvaluationFHIR"


def test_report_ids_and_numerator_evidence(ruleset):
    run = run_resources([*diabetic(), egfr(), uacr()], ruleset, measures=("CMS951",))
    (report,) = run.reports
    assert report["measure"] == f"{URL}|0.1.000"
    (group,) = report["group"]
    assert group["id"] == "64f0dfe956d636294b157faf"
    counts = {p["code"]["coding"][0]["code"]: (p["id"], p["count"]) for p in group["population"]}
    assert counts["numerator"] == ("7D03E452-3D92-4738-A8CA-92C253985F15", 1)
    assert counts["denominator-exclusion"] == ("D491DA23-7FBF-49FC-BFBE-DCC3D0D887C8", 0)
    refs = {e["reference"] for e in report.get("evaluatedResource", [])}
    assert {"Observation/egfr", "Observation/uacr"} <= refs


def test_not_met_without_the_urine_test(ruleset):
    run = run_resources([*diabetic(), egfr()], ruleset, measures=("CMS951",))
    assert run.population("CMS951")["denominator"]
    assert not run.population("CMS951")["numerator"]


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources([*diabetic(), egfr(), uacr()], ruleset, program="mips-claims", measures=("CMS951",))
    assert run.measure_codes("CMS951") == []
