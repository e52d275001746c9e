"""CMS138 (MIPS 226) tobacco use screening and cessation intervention: three population groups
(PreventiveCareAndTobaccoUseScreeningAndCessationInterventionFHIR 0.0.001)."""

from __future__ import annotations

import pytest

from .conftest import (
    CPT,
    RXNORM,
    SNOMED,
    coded_obs,
    condition,
    encounter,
    patient,
    procedure,
    request,
    run_resources,
)

NON_USER = "266919005"  # never smoked tobacco
USER = "449868002"  # smokes tobacco daily
UNKNOWN = "266927001"  # unknown if ever smoked: in neither value set


def visits(birth: str = "1980-06-01", n: int = 2):
    resources = [patient(birth=birth)]
    for index in range(n):
        resources.append(encounter(f"v{index}", f"2025-0{index + 3}-04T09:00:00Z"))
    return resources


def screening(oid: str, value: str, when: str = "2025-03-04T09:10:00Z", **kw):
    return coded_obs(oid, "72166-2", when, value_code=value, **kw)


def groups(run):
    return [run.population("CMS138", group=g) for g in range(3)]


@pytest.mark.parametrize(("n", "in_population"), [(2, True), (1, False)])
def test_two_qualifying_visits_needed_without_a_preventive_visit(ruleset, n, in_population):
    """Initial Population: Count('Qualifying Visit During Measurement Period') >= 2 or a preventive visit."""
    assert groups(run_resources(visits(n=n), ruleset))[0]["initial-population"] is in_population


def test_one_preventive_visit_suffices(ruleset):
    """Initial Population: exists 'Preventive Visit During Measurement Period' (CPT 99395 preventive 18+)."""
    resources = [patient(birth="1980-06-01"), encounter("prev", cpt="99395")]
    assert groups(run_resources(resources, ruleset))[0]["initial-population"] is True


@pytest.mark.parametrize(("birth", "in_population"), [("2013-01-01", True), ("2013-01-02", False)])
def test_age_12_at_start_of_period(ruleset, birth, in_population):
    """AgeInYearsAt(start of MP) >= 12."""
    assert groups(run_resources(visits(birth=birth), ruleset))[0]["initial-population"] is in_population


def test_non_user_meets_groups_1_and_3_and_is_not_in_denominator_2(ruleset):
    """Numerator 1 (screened), Denominator 2 needs a user, Numerator 3 (non-user)."""
    g1, g2, g3 = groups(run_resources([*visits(), screening("s", NON_USER)], ruleset))
    assert g1["numerator"] and not g2["denominator"] and g3["numerator"]


def test_user_without_intervention(ruleset):
    """A user with no cessation intervention: screened (1), in denominator 2 but not numerator 2, not
    numerator 3."""
    g1, g2, g3 = groups(run_resources([*visits(), screening("s", USER)], ruleset))
    assert g1["numerator"] and g2["denominator"] and not g2["numerator"] and not g3["numerator"]


def test_only_the_most_recent_screening_counts(ruleset):
    """'Most Recent Tobacco Use Screening': Last(... sort by start of effective); a later unknown answer
    wins."""
    resources = [
        *visits(),
        screening("a", NON_USER, "2025-02-01T09:00:00Z"),
        screening("b", UNKNOWN, "2025-05-01T09:00:00Z"),
    ]
    g1, _, g3 = groups(run_resources(resources, ruleset))
    assert not g1["numerator"] and not g3["numerator"]


def test_screening_needs_survey_category(ruleset):
    """Status.isAssessmentPerformed: category survey (US Core social-history alone does not count)."""
    resources = [*visits(), screening("s", NON_USER, category="social-history")]
    assert groups(run_resources(resources, ruleset))[0]["numerator"] is False


@pytest.mark.parametrize(
    ("when", "counts"),
    [("2024-07-01T09:00:00Z", True), ("2024-06-30T09:00:00Z", False), ("2025-12-31T09:00:00Z", True)],
)
def test_counseling_window_starts_six_months_before_the_period(ruleset, when, counts):
    """'Tobacco Cessation Counseling Given': during day of [start of MP - 6 months, end of MP]."""
    resources = [*visits(), screening("s", USER), procedure("c", "99406", when, system=CPT)]
    _, g2, g3 = groups(run_resources(resources, ruleset))
    assert g2["numerator"] is counts and g3["numerator"] is counts


def test_tobacco_abuse_counseling_condition_counts(ruleset):
    """Counseling union: Condition ICD-10-CM Z71.6 whose prevalence starts in the window."""
    resources = [*visits(), screening("s", USER), condition("z", "Z71.6", onset="2025-02-01")]
    assert groups(run_resources(resources, ruleset))[1]["numerator"] is True


def test_pharmacotherapy_order_counts(ruleset):
    """'Tobacco Cessation Pharmacotherapy Ordered': order (active/completed, intent order) authored in the
    window."""
    order = request(
        "MedicationRequest", "nrt", "198029", "2025-03-04T09:30:00Z", system=RXNORM, status="completed"
    )
    resources = [*visits(), screening("s", USER), order]
    assert groups(run_resources(resources, ruleset))[1]["numerator"] is True
    proposal = request(
        "MedicationRequest", "nrt", "198029", "2025-03-04T09:30:00Z", system=RXNORM, intent="proposal"
    )
    assert (
        groups(run_resources([*visits(), screening("s", USER), proposal], ruleset))[1]["numerator"] is False
    )


def test_hospice_excludes_from_every_group(ruleset):
    """Denominator Exclusion (all groups): Hospice."""
    resources = [
        *visits(),
        screening("s", USER),
        condition("h", "170935008", onset="2025-06-01", system=SNOMED),
    ]
    g1, g2, g3 = groups(run_resources(resources, ruleset))
    assert g1["denominator-exclusion"] and g2["denominator-exclusion"] and g3["denominator-exclusion"]


def test_claims_codes_per_rate_2024(ruleset):
    """MIPS 226 (2024): rate 1 G9902, rate 2 G9902+G9906 (reported once), rate 3 G0030 for a treated user."""
    resources = [*visits(), screening("s", USER), procedure("c", "99406", "2025-03-04T09:20:00Z", system=CPT)]
    run = run_resources([_redate(r, 2024) for r in resources], ruleset, period=2024, program="mips-claims")
    assert run.measure_codes("CMS138", "v0") == ["G9902", "G9906", "G0030"]


def test_claims_rate_3_non_user_reports_1036f(ruleset):
    """MIPS 226.02: the non-user reports 1036F (CPT II), rate 1 G9903."""
    run = run_resources(
        [_redate(r, 2024) for r in [*visits(), screening("s", NON_USER)]],
        ruleset,
        period=2024,
        program="mips-claims",
    )
    assert run.measure_codes("CMS138", "v0") == ["G9903", "1036F"]


@pytest.mark.parametrize(("period", "codes"), [(2023, []), (2024, ["G9903", "1036F"])])
def test_claims_age_band_changes_in_2024(ruleset, period, codes):
    """CMS claims single source: AGE >= 18 in 2023, >= 12 from 2024; a 15-year-old reports nothing in 2023."""
    resources = [
        _redate(r, period) for r in [*visits(birth=f"{period - 15}-01-01"), screening("s", NON_USER)]
    ]
    run = run_resources(resources, ruleset, period=period, program="mips-claims")
    assert run.measure_codes("CMS138", "v0") == codes


def _redate(resource, year):
    import json

    return json.loads(json.dumps(resource).replace("2025-", f"{year}-"))
