"""CMS645 (MIPS 462) bone density evaluation for prostate cancer patients on androgen deprivation therapy
(BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR 1.4.000): the 12-month ADT order after the first
ADT during prostate cancer, the DEXA window around it, the always-false exception; MeasureReports, explain,
and no quality-data codes. Populations are cross-checked with the reference engine in
tests/oracle/cms645.py."""

from __future__ import annotations

from .conftest import not_done_obs, run_resources
from .oracle.cms645 import DECLINED, DEXA, dexa_done, dexa_ordered, on_adt
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR"


def test_dexa_after_the_order_is_met_and_reports_every_population(ruleset):
    run = run_resources([*on_adt(), dexa_done()], ruleset, report="both")
    assert run.population("CMS645") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exception": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|1.4.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_dexa_window_from_two_years_before_to_three_months_after(ruleset):
    def outcome(*extra):
        return run_resources([*on_adt(), *extra], ruleset).outcome("CMS645")

    assert outcome(dexa_done("2023-02-01T10:00:00Z")) == "met"
    assert outcome(dexa_done("2023-01-31T10:00:00Z")) == "not-met"
    assert outcome(dexa_done("2025-05-01T10:00:00Z")) == "met"
    assert outcome(dexa_done("2025-05-02T10:00:00Z")) == "not-met"
    assert outcome(dexa_ordered("2025-04-30T10:00:00Z")) == "met"


def test_a_declined_dexa_is_no_exception(ruleset):
    declined = not_done_obs("dexa", DEXA, DECLINED, "2025-02-15T10:00:00Z")
    assert run_resources([*on_adt(), declined], ruleset).outcome("CMS645") == "not-met"


def test_the_order_must_follow_an_adt(ruleset):
    late_adt = on_adt(adt_at="2025-02-10T09:00:00Z")
    assert run_resources(late_adt, ruleset).population("CMS645")["initial-population"] is False


def test_no_quality_data_codes(ruleset):
    resources = [*on_adt(), dexa_done()]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS645") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS645") == []


def test_explain_names_the_order_and_the_adt(tmp_path, capsys):
    resources = on_adt()
    text = explain_text(tmp_path, capsys, "CMS645", resources)
    assert "CMS645 / MIPS 462" in text
    assert "ServiceRequest/order" in text and "MedicationRequest/adt" in text
    assert "DEXA scan from 2 years before to 3 months after the 12-month ADT order" in text
    assert "Denominator Exception is false" in text
