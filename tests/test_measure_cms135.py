"""CMS135 (MIPS 005) heart failure ACE inhibitor, ARB or ARNI therapy for LVSD: a medication taken counts,
explain trail of an exception, no claims codes; populations are cross-checked in tests/oracle."""

from __future__ import annotations

from .conftest import SNOMED, run_resources
from .oracle.heart import confirmed, heart_failure_patient, medication
from .support.explain import explain_text


def test_a_medication_currently_taken_counts(ruleset):
    taking = medication("ace", "197884", "2024-06-01T09:00:00Z", bounds=("2024-06-01", None))
    run = run_resources([*heart_failure_patient(), taking], ruleset, measures=("CMS135",))
    assert len(run.reports) == 1
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
    text = explain_text(tmp_path, capsys, "CMS135", resources, "--full")
    assert "CMS135 / MIPS 005" in text
    assert (
        "Acute renal failure caused by an ACE inhibitor overlapping a heart failure encounter with LVSD"
        in text
    )
    assert "Condition/arf" in text
