"""Every band boundary of the BP and HbA1c code rules (domain.md §1.2, §1.3), encounter level, HEDIS."""

from __future__ import annotations

import pytest

from .conftest import a1c, bp_panel, encounter, patient, run_resources

SYSTOLIC = {"3074F", "3075F", "3077F"}
DIASTOLIC = {"3078F", "3079F", "3080F"}
A1C = {"3044F", "3051F", "3052F", "3046F"}


@pytest.mark.parametrize(
    ("systolic", "expected"),
    [
        (129, "3074F"),
        (129.9, "3074F"),
        (130, "3075F"),
        (139, "3075F"),
        (139.5, "3075F"),
        (140, "3077F"),
        (141, "3077F"),
    ],
)
def test_systolic_bands(ruleset, systolic, expected):
    """3074F < 130, 3075F 130-139, 3077F >= 140 (domain.md §1.2)."""
    run = run_resources([patient(), encounter(), bp_panel("bp", systolic, 70)], ruleset)
    assert [c for c in run.codes() if c in SYSTOLIC] == [expected]


@pytest.mark.parametrize(
    ("diastolic", "expected"),
    [(79, "3078F"), (79.9, "3078F"), (80, "3079F"), (89, "3079F"), (90, "3080F"), (91, "3080F")],
)
def test_diastolic_bands(ruleset, diastolic, expected):
    """3078F < 80, 3079F 80-89, 3080F >= 90 (domain.md §1.2)."""
    run = run_resources([patient(), encounter(), bp_panel("bp", 120, diastolic)], ruleset)
    assert [c for c in run.codes() if c in DIASTOLIC] == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(6.9, "3044F"), (7.0, "3051F"), (7.9, "3051F"), (8.0, "3052F"), (9.0, "3052F"), (9.1, "3046F")],
)
def test_hba1c_percent_bands(ruleset, value, expected):
    """3044F < 7.0, 3051F 7.0-<8.0, 3052F 8.0-9.0 inclusive, 3046F > 9.0 (domain.md §1.3)."""
    run = run_resources([patient(), encounter(), a1c("a", value, eid="e1")], ruleset)
    assert [c for c in run.codes() if c in A1C] == [expected]


@pytest.mark.parametrize(
    ("mmol", "expected"),
    # % = 0.0915 x mmol/mol + 2.15: 53 -> 6.9995 (< 7.0), 54 -> 7.091, 64 -> 8.006, 75 -> 9.0125 (> 9.0)
    [(53, "3044F"), (54, "3051F"), (63, "3051F"), (64, "3052F"), (74, "3052F"), (75, "3046F")],
)
def test_hba1c_mmol_per_mol_is_converted_before_banding(ruleset, mmol, expected):
    """IFCC mmol/mol values are converted with the master equation before banding (domain.md §1.3)."""
    run = run_resources([patient(), encounter(), a1c("a", mmol, unit="mmol/mol", eid="e1")], ruleset)
    assert [c for c in run.codes() if c in A1C] == [expected]


def test_gmi_counts_as_glycemic_status(ruleset):
    """GMI 97506-0 is read like HbA1c (CMS122 'Glucose management indicator')."""
    run = run_resources([patient(), encounter(), a1c("g", 7.4, code="97506-0", eid="e1")], ruleset)
    assert "3051F" in run.codes()


def test_ifcc_loinc_outside_the_value_set_is_not_read(ruleset):
    """LOINC 59261-8 is not in the CMS HbA1c value set (domain.md §1.3)."""
    run = run_resources(
        [patient(), encounter(), a1c("i", 60, unit="mmol/mol", code="59261-8", eid="e1")], ruleset
    )
    assert not set(run.codes()) & A1C


def test_one_systolic_and_one_diastolic_code_per_encounter(ruleset):
    run = run_resources([patient(), encounter(), bp_panel("bp", 135, 85)], ruleset)
    assert run.codes() == ["3075F", "3079F"]
