"""CMS117 (MIPS 240) childhood immunization status (ChildhoodImmunizationStatusFHIR 0.1.000): the ten vaccine
series counted on distinct days over Immunizations and Procedures by the 2nd birthday, the schedules that need
one more dose, the conditions that meet a series, the exclusions, the MeasureReport, explain, and no claims
codes (MIPS 240 is EHR only)."""

from __future__ import annotations

from .conftest import condition, immunization, run_resources
from .oracle.cms117 import SERIES, administered, child, diagnosed, series, shot
from .support.explain import explain_text

URL = "https://madie.cms.gov/Measure/ChildhoodImmunizationStatusFHIR"


def test_every_series_on_schedule_meets_with_both_reports(ruleset):
    run = run_resources([*child(), *series()], ruleset, report="both", measures=("CMS117",))
    assert run.population("CMS117") == {
        "initial-population": True,
        "denominator": True,
        "denominator-exclusion": False,
        "numerator": True,
    }
    reports = [r for r in run.reports if r["measure"] == f"{URL}|0.1.000"]
    assert {r["type"] for r in reports} == {"individual", "summary"}


def test_each_series_missing_a_dose_fails(ruleset):
    for name, (_, days) in SERIES.items():
        run = run_resources([*child(), *series(**{name: days[:-1]})], ruleset, measures=("CMS117",))
        assert not run.population("CMS117")["numerator"], name


def test_an_immunization_and_a_procedure_on_one_day_are_one_dose(ruleset):
    three = series(dtap=SERIES["dtap"][1][:3])
    same_day = run_resources([*child(), *three, administered("p", "90700", "2023-12-15")], ruleset)
    assert not same_day.population("CMS117")["numerator"]
    other_day = run_resources([*child(), *three, administered("p", "90700", "2024-09-15")], ruleset)
    assert other_day.population("CMS117")["numerator"]


def test_window_edges_42_days_and_2nd_birthday(ruleset):
    for first, last, met in (
        ("2023-07-27", "2025-06-15", True),
        ("2023-07-26", "2025-06-15", False),
        ("2023-07-27", "2025-06-16", False),
    ):
        days = (first, "2023-10-15", "2023-12-15", last)
        run = run_resources([*child(), *series(pcv=days)], ruleset, measures=("CMS117",))
        assert run.population("CMS117")["numerator"] is met, (first, last)


def test_four_dose_hib_and_three_dose_rotavirus_need_one_more(ruleset):
    hib4 = shot("hib4-", 0, "48", "2024-07-15")
    short = run_resources([*child(), *series(hib=SERIES["hib"][1][:2]), hib4], ruleset)
    assert not short.population("CMS117")["numerator"]
    rv3 = shot("rv3-", 0, "116", "2023-12-15")
    enough = run_resources([*child(), *series(), rv3], ruleset)
    assert enough.population("CMS117")["numerator"]
    rv_short = run_resources([*child(), *series(rv=SERIES["rv"][1][:1]), rv3], ruleset)
    assert not rv_short.population("CMS117")["numerator"]


def test_laiv_on_the_2nd_birthday_completes_influenza(ruleset):
    one = series(flu=("2023-12-15",))
    on_birthday = run_resources([*child(), *one, shot("laiv", 0, "111", "2025-06-15")], ruleset)
    assert on_birthday.population("CMS117")["numerator"]
    early = run_resources([*child(), *one, shot("laiv", 0, "111", "2025-06-14")], ruleset)
    assert not early.population("CMS117")["numerator"]


def test_conditions_meet_a_series_and_exclusions(ruleset):
    no_vzv = [*child(), *series(vzv=None)]
    assert run_resources([*no_vzv, diagnosed("vz", "B01.9")], ruleset).population("CMS117")["numerator"]
    late = diagnosed("vz", "B01.9", "2025-07-01T10:00:00Z")
    assert not run_resources([*no_vzv, late], ruleset).population("CMS117")["numerator"]
    hiv = run_resources([*child(), *series(), diagnosed("hiv", "B20")], ruleset)
    assert hiv.population("CMS117")["denominator-exclusion"]
    # resolved without an abatement date: the CQL's prevalenceInterval() is null, so it starts nowhere
    resolved = condition("hiv", "B20", onset="2024-01-10T10:00:00Z", status="resolved")
    assert not run_resources([*child(), *series(), resolved], ruleset).population("CMS117")[
        "denominator-exclusion"
    ]


def test_not_done_immunization_does_not_count(ruleset):
    not_done = immunization("nd", "20", "2024-09-15T10:00:00Z", status="not-done")
    run = run_resources([*child(), *series(dtap=SERIES["dtap"][1][:3]), not_done], ruleset)
    assert not run.population("CMS117")["numerator"]


def test_no_claims_codes(ruleset):
    run = run_resources([*child(), *series()], ruleset, program="mips-claims")
    assert run.measure_codes("CMS117") == []
    assert ruleset.measure("CMS117").groups[0].claims == ()


def test_explain_counts_the_days_of_a_series(tmp_path, capsys):
    resources = [*child(), *series(dtap=SERIES["dtap"][1][:3])]
    text = explain_text(tmp_path, capsys, "CMS117", resources)
    assert "3 different days (2023-08-15, 2023-10-15, 2023-12-15), needs 4" in text
