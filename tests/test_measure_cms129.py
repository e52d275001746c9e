"""CMS129 (MIPS 102) prostate cancer: avoidance of bone scan overuse for low risk patients
(ProstateCaAvoidanceBoneScanOveruseFHIR 0.3.000): the low-risk denominator read before the first treatment,
the bone scan numerator, exceptions; MeasureReports, explain, and no claims codes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_cat2.criteria.judge import _timing_ok
from fhir_cat2.rules.timing import Span

from .conftest import run_resources
from .oracle.cms129 import T3, bone_scan, low_risk, psa, staging, treatment
from .support.explain import explain_text


def at(hour: int) -> datetime:
    return datetime(2025, 3, 4, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("relation", "start_hour", "holds"),
    [("starts_before", 9, True), ("starts_before", 10, False), ("starts_by", 10, True)],
)
def test_starts_before_is_strict(relation, start_hour, holds):
    """'starts before start of X' (CQL): strictly earlier, to the instant."""
    day = date(2025, 3, 4)
    window = ((day, at(10)), (day, at(10)))
    span = Span(day, day, at(start_hour), at(start_hour))
    assert _timing_ok(relation, window, span, "instant") is holds


def test_low_risk_without_a_bone_scan_is_met(ruleset):
    run = run_resources(low_risk(), ruleset, report="both")
    assert run.population("CMS129") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exception": False,
        "numerator": True,
    }


def test_a_bone_scan_after_the_diagnosis_is_not_met_unless_it_has_a_reason(ruleset):
    assert run_resources([*low_risk(), bone_scan()], ruleset).outcome("CMS129") == "not-met"
    assert run_resources([*low_risk(), bone_scan(reason=True)], ruleset).outcome("CMS129") == "exception"
    before = bone_scan("2024-09-01T10:00:00Z")
    assert run_resources([*low_risk(), before], ruleset).outcome("CMS129") == "met"


def test_the_latest_staging_before_the_first_treatment_decides(ruleset):
    later_t3 = staging(T3, "2025-03-15T10:00:00Z", oid="stage2")
    assert run_resources([*low_risk(), later_t3], ruleset).population("CMS129")["denominator"] is False
    after_first = [
        staging(T3, "2025-06-01T10:00:00Z", oid="s2"),
        treatment("2025-07-01T10:00:00Z", rid="tx2"),
    ]
    assert run_resources([*low_risk(), *after_first], ruleset).population("CMS129")["denominator"] is True


def test_psa_must_be_below_10_before_the_staging(ruleset):
    high = [r for r in low_risk() if r["id"] != "psa"] + [psa(10)]
    assert run_resources(high, ruleset).population("CMS129")["denominator"] is False


def test_no_claims_codes(ruleset):
    assert run_resources(low_risk(), ruleset, program="mips-claims").measure_codes("CMS129") == []


def test_explain_names_the_staging_and_psa(tmp_path, capsys):
    text = explain_text(tmp_path, capsys, "CMS129", low_risk())
    assert "CMS129 / MIPS 102" in text
    assert "Most recent tumor staging before the first treatment is T1a, T1b, T1c or T2a" in text
    assert "Observation/psa" in text and "Observation/gleason" in text
