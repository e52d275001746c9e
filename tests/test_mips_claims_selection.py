"""--program mips-claims: the measure's outcome as of each qualifying encounter picks the CMS category, the
first matching option the codes (CMS claims single source, per year). Excluded patients report the exclusion
code instead of performance codes."""

from __future__ import annotations

import json

import pytest

from .conftest import HCPCS, a1c, bp_panel, condition, encounter, patient, run_resources


def htn(birth: str = "1960-06-01"):
    return [patient(birth=birth), condition("htn", "I10", onset="2019-01-01")]


def dm(birth: str = "1960-06-01"):
    return [patient(birth=birth), condition("dm", "E11.9", onset="2019-01-01")]


def redate(resources, year):
    return [json.loads(json.dumps(r).replace("2025-", f"{year}-")) for r in resources]


@pytest.mark.parametrize(
    ("sbp", "dbp", "expected"),
    [
        (139, 89, ["G8752", "G8754"]),
        (140, 89, ["G8753", "G8754"]),
        (139, 90, ["G8752", "G8755"]),
        (150, 95, ["G8753", "G8755"]),
    ],
)
def test_mips236_pairs_follow_the_cms165_numerator(ruleset, sbp, dbp, expected):
    """MIPS 236 options: G8752+G8754 met; the three not-met pairs by which of SBP < 140 / DBP < 90 fails."""
    run = run_resources([*htn(), encounter(), bp_panel("bp", sbp, dbp)], ruleset, program="mips-claims")
    assert run.measure_codes("CMS165") == expected


def test_mips236_no_bp_documented(ruleset):
    """MIPS 236 G8756: no BP documented (in the period up to the visit)."""
    assert run_resources([*htn(), encounter()], ruleset, program="mips-claims").measure_codes("CMS165") == [
        "G8756"
    ]


def test_each_visit_reports_the_status_as_of_that_visit(ruleset):
    """Claims are judged on the record as of the visit: March reports no BP, September the September
    reading."""
    resources = [
        *htn(),
        encounter("e1", "2025-03-04T09:00:00Z"),
        encounter("e2", "2025-09-04T09:00:00Z"),
        bp_panel("bp", 150, 95, "2025-09-04T09:10:00Z", eid="e2"),
    ]
    run = run_resources(resources, ruleset, program="mips-claims")
    assert run.measure_codes("CMS165", "e1") == ["G8756"]
    assert run.measure_codes("CMS165", "e2") == ["G8753", "G8755"]


def test_emergency_visits_carry_no_mips236_codes(ruleset):
    """Codes ride on the measure's qualifying (outpatient) encounters only; an ED visit is not one."""
    resources = [*htn(), encounter(), encounter("er", "2025-05-05T22:00:00Z", cpt="99284", klass="EMER")]
    run = run_resources(resources, ruleset, program="mips-claims")
    assert run.measure_codes("CMS165", "er") == []


@pytest.mark.parametrize(
    ("year", "expected"),
    [(2021, ["G9740"]), (2023, ["G9740"]), (2025, ["G9740"])],
)
def test_hospice_reports_g9740_instead_of_performance_codes(ruleset, year, expected):
    """MIPS 236 exclusion G9740 (hospice), listed 2019-2025."""
    resources = [
        *htn(),
        encounter(),
        bp_panel("bp", 150, 95),
        encounter("h", "2025-02-01T09:00:00Z", cpt="Q5003", system=HCPCS, klass="HH"),
    ]
    run = run_resources(redate(resources, year), ruleset, period=year, program="mips-claims")
    assert run.measure_codes("CMS165", "e1") == expected


@pytest.mark.parametrize(("year", "expected"), [(2021, []), (2022, ["G0031"]), (2025, ["G0031"])])
def test_palliative_exclusion_code_exists_from_2022(ruleset, year, expected):
    """MIPS 236 G0031 palliative care was added in 2022; in 2021 no listed code fits, so none is reported."""
    resources = [*htn(), encounter(), bp_panel("bp", 150, 95), condition("pall", "Z51.5", onset="2025-01-02")]
    run = run_resources(redate(resources, year), ruleset, period=year, program="mips-claims")
    assert run.measure_codes("CMS165", "e1") == expected


def test_frail_81_reports_g2118(ruleset):
    """MIPS 236 G2118: 81 or older with frailty."""
    resources = [
        *htn(birth="1943-01-01"),
        encounter(),
        bp_panel("bp", 150, 95),
        condition("f", "M62.81", onset="2025-01-02"),
    ]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS165") == ["G2118"]


@pytest.mark.parametrize(
    ("year", "value", "expected"),
    [
        (2023, 9.4, ["3046F"]),
        (2023, 6.5, ["3044F"]),
        (2024, 9.4, ["M1211"]),
        (2024, 8.0, ["3052F"]),
        (2025, 9.0, ["M1373"]),
        (2025, 7.0, ["M1372"]),
        (2025, 6.99, ["M1371"]),
        (2025, 9.01, ["M1211"]),
    ],
)
def test_mips001_codes_by_year_and_band(ruleset, year, value, expected):
    """MIPS 001 (inverse): 2021-2023 CPT II, 2024 met M1211/M1212 with CPT II not met, 2025 M1371-M1373 not
    met."""
    resources = [*dm(), encounter(), a1c("a", value)]
    run = run_resources(redate(resources, year), ruleset, period=year, program="mips-claims")
    assert run.measure_codes("CMS122") == expected


@pytest.mark.parametrize(("year", "expected"), [(2023, ["3046F-8P"]), (2024, ["M1212"]), (2025, ["M1212"])])
def test_mips001_missing_result(ruleset, year, expected):
    """MIPS 001: no HbA1c reports 3046F-8P (to 2023) or M1212 (from 2024)."""
    run = run_resources(redate([*dm(), encounter()], year), ruleset, period=year, program="mips-claims")
    assert run.measure_codes("CMS122") == expected


def test_mips001_hospice_exclusion(ruleset):
    """MIPS 001 exclusion G9687 (hospice)."""
    resources = [
        *dm(),
        encounter(),
        a1c("a", 9.4),
        encounter("h", "2025-02-01T09:00:00Z", cpt="Q5003", system=HCPCS, klass="HH"),
    ]
    assert run_resources(resources, ruleset, program="mips-claims").measure_codes("CMS122", "e1") == ["G9687"]


def test_no_claims_codes_outside_the_years_of_the_table(ruleset):
    """A year with no claims row for a measure (2019 for MIPS 001) reports nothing rather than a wrong
    code."""
    run = run_resources(
        redate([*dm(), encounter(), a1c("a", 9.4)], 2019), ruleset, period=2019, program="mips-claims"
    )
    assert run.measure_codes("CMS122") == []
