"""CMS646 (MIPS 481) intravesical BCG for non-muscle-invasive bladder cancer
(IntravesicalBacillusCalmetteGuerinForBladderCancerFHIR 1.4.000): the staging result as the CQL runs (any
Observation code, a partOf), BCG within 6 months of the first staging, the exclusions anchored on it, the
always-false exception; MeasureReports, explain, and no quality-data codes. Populations are cross-checked with
the reference engine in tests/oracle/cms646.py."""

from __future__ import annotations

from .conftest import CPT, ICD10, procedure, run_resources
from .oracle.cms646 import CYSTECTOMY, TUBERCULOSIS, bcg, bcg_not_given, staged, staging_obs
from .oracle.heart import confirmed
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/IntravesicalBacillusCalmetteGuerinForBladderCancerFHIR"


def test_bcg_after_the_staging_is_met_and_reports_every_population(ruleset):
    run = run_resources([*staged(), bcg()], ruleset, report="both")
    assert run.population("CMS646") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exclusion": False,
        "denominator-exception": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|1.4.000"]
    assert sorted(r["type"] for r in reports) == ["individual", "summary"]


def test_bcg_from_the_staging_to_six_months_after(ruleset):
    def outcome(given: str) -> str:
        return run_resources([*staged(), bcg(given)], ruleset).outcome("CMS646")

    assert outcome("2025-01-15T12:00:00Z") == "met"  # the staging's day, after it
    assert outcome("2025-01-15T09:00:00Z") == "not-met"  # the staging's day, before it (10:00)
    assert outcome("2025-07-15T09:00:00Z") == "met"
    assert outcome("2025-07-16T09:00:00Z") == "not-met"


def test_the_staging_result_is_read_whatever_its_code_but_needs_a_part_of(ruleset):
    no_part_of = [*staged(observation=False), staging_obs(part_of=None), bcg()]
    assert run_resources(no_part_of, ruleset).population("CMS646")["initial-population"] is False
    elsewhere = [*staged(observation=False), staging_obs(part_of="other"), bcg()]
    assert run_resources(elsewhere, ruleset).outcome("CMS646") == "met"


def test_exclusions_are_anchored_on_the_first_staging(ruleset):
    tb = confirmed("tb", TUBERCULOSIS, system=ICD10, onset="2024-11-01")
    assert run_resources([*staged(), tb], ruleset).population("CMS646")["denominator-exclusion"] is True
    cut = procedure("cyst", CYSTECTOMY, "2024-10-15T10:00:00Z", system=CPT)
    assert run_resources([*staged(), cut], ruleset).population("CMS646")["denominator-exclusion"] is True
    earlier = procedure("cyst", CYSTECTOMY, "2024-06-15T10:00:00Z", system=CPT)
    assert run_resources([*staged(), earlier], ruleset).population("CMS646")["denominator-exclusion"] is False


def test_bcg_unavailable_is_no_exception(ruleset):
    run = run_resources([*staged(), bcg_not_given()], ruleset)
    assert run.outcome("CMS646") == "not-met"
    assert run.population("CMS646")["denominator-exception"] is False
    assert run.sink.quarantined == []  # MedicationAdministration.statusReason is a list: read, not refused


def test_bcg_is_timed_by_its_effective_time(ruleset):
    given = bcg()
    given["effectivePeriod"] = {"start": "2025-08-01T09:00:00Z", "end": "2025-08-01T10:00:00Z"}
    del given["effectiveDateTime"]  # 6 months and a half after the staging
    assert run_resources([*staged(), given], ruleset).outcome("CMS646") == "not-met"
    given["effectivePeriod"]["start"] = "2025-07-01T09:00:00Z"
    assert run_resources([*staged(), given], ruleset).outcome("CMS646") == "met"


def test_no_quality_data_codes(ruleset):
    resources = [*staged(), bcg()]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS646") == []
    assert run_resources(resources, ruleset, program="hedis").measure_codes("CMS646") == []


def test_explain_names_the_staging_result_and_the_missing_bcg(tmp_path, capsys):
    resources = staged()  # no BCG: the exception is judged too
    text = explain_text(tmp_path, capsys, "CMS646", resources)
    assert "CMS646 / MIPS 481" in text
    assert "Observation/tnm" in text and "Encounter/e1" in text
    assert "BCG given within 6 months after the first staging" in text
    assert "NOT MET" in text
    assert "the CQL's Denominator Exception is false" in text
