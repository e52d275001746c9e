"""CMS156 (MIPS 238) use of high-risk medications in older adults, three groups sharing a denominator: what
the generated cases of tests/oracle/cms156.py cannot show: one MeasureReport with the three groups, the
summary (an inverse measure), the explain trail, no claims codes."""

from __future__ import annotations

from fhir_cat2.explain import outcome_to_text

from .conftest import run_resources
from .oracle.cms156 import DIGOXIN_TABLET, DIPHENHYDRAMINE, LURASIDONE, NITROFURANTOIN, older, order

URL = "https://madie.cms.gov/Measure/UseofHighRiskMedicationsintheElderlyFHIR"


def reports(run):
    return [r for r in run.reports if r["measure"].startswith(URL)]


def test_one_report_with_the_three_groups(ruleset):
    antipsychotics = [
        order("p1", LURASIDONE, "2025-03-04T09:20:00Z", days=30),
        order("p2", LURASIDONE, "2025-05-06T09:20:00Z", days=30),
    ]
    run = run_resources([*older(), *antipsychotics], ruleset)
    assert len(reports(run)) == 1
    first, second, third = (run.population("CMS156", group=i) for i in range(3))
    assert first["denominator"] and not first["numerator"]
    assert second["numerator"] and third["numerator"]


def test_summary_scores_each_group(ruleset):
    """Two patients: one with an antihistamine refill (numerator 1 and 3), one with none."""
    with_refill = [*older(), order("a1", DIPHENHYDRAMINE, refills=1, days=30)]
    other = [
        {**older()[0], "id": "p2"},
        {**older()[1], "id": "e2", "subject": {"reference": "Patient/p2"}},
    ]
    run = run_resources([*with_refill, *other], ruleset, report="summary")
    (summary,) = reports(run)
    scores = [g["measureScore"]["value"] for g in summary["group"]]
    assert scores == [0.5, 0.0, 0.5]


def test_explain_gives_the_days_supplied_and_the_daily_dose(ruleset):
    run = run_resources(
        [
            *older(),
            order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", days=45),
            order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", days=45),
            order("d1", DIGOXIN_TABLET, "2025-03-04T09:20:00Z", quantity=30, days=60),
            order("d2", DIGOXIN_TABLET, "2025-05-04T09:20:00Z", quantity=30, days=60),
        ],
        ruleset,
    )
    [outcome] = run.outcomes
    text = outcome_to_text(outcome, ruleset, ["CMS156"], full=True)
    assert "2 matching MedicationRequests supplying 90 days in all (needs > 90)" in text
    assert "average daily dose 0.125 mg/d, not > 0.125" in text


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources(
        [*older(), order("a1", DIPHENHYDRAMINE, refills=1, days=30)], ruleset, program="mips-claims"
    )
    assert run.measure_codes("CMS156") == []
