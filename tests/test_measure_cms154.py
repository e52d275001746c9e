"""CMS154 (MIPS 065) appropriate treatment for URI (AppropriateTreatmentforUpperRespiratoryInfectionURIFHIR
0.1.001): each qualifying visit with a URI is an episode, met when no antibiotic is ordered from its start
to 3 days after (to the instant); MeasureReports with the three age strata (the first from 3 months), the
exclusions that differ from CMS146, explain, and no claims codes."""

from __future__ import annotations

from .conftest import patient, run_resources
from .oracle.respiratory import PHARYNGITIS, URI, antibiotic, diagnosis, visit
from .support.explain import explain_text
from .support.reports import counts_of, strata_of, summary_of

URL = "https://madie.cms.gov/Measure/AppropriateTreatmentforUpperRespiratoryInfectionURIFHIR"
STRATA = (
    "6fddfab7-ee36-4e97-9859-09f0abfabfeb",
    "863976f9-0817-4734-bda3-19e3fadf951d",
    "7c5d99f3-6bb1-4528-a575-fa77e1113c0d",
)


def episode(pid: str = "p1", birth: str = "2019-05-01"):
    return [
        patient(pid, birth=birth),
        visit(pid=pid),
        diagnosis(f"uri-{pid}", URI, pid=pid),
    ]


def test_summary_counts_episodes_and_age_strata(ruleset):
    resources = [
        *episode("p1", "2024-10-01"),  # 3 months
        *episode("p2", "1990-05-01"),
        antibiotic(pid="p2"),
        *episode("p3", "1950-05-01"),
        *episode("p4", "2024-10-02"),  # 2 months: not in the population
    ]
    run = run_resources(resources, ruleset, report="both", measures=("CMS154",))
    [group] = summary_of(run, f"{URL}|0.1.001")["group"]
    assert counts_of(group["population"]) == {
        "initial-population": 3,
        "denominator": 3,
        "denominator-exclusion": 0,
        "numerator": 2,
    }
    strata = strata_of(group)
    assert [strata[i]["initial-population"] for i in STRATA] == [1, 1, 1]
    assert [strata[i]["numerator"] for i in STRATA] == [1, 0, 1]


def test_antibiotic_window_is_read_to_the_instant(ruleset):
    """'authoredOn 3 days or less on or after start of the visit': no 'day of', so to the minute."""
    for authored, met in (
        ("2025-03-07T09:00:00Z", 0),
        ("2025-03-07T09:01:00Z", 1),
        ("2025-03-04T08:59:00Z", 1),
        ("2025-03-04T09:00:00Z", 0),
    ):
        run = run_resources([*episode(), antibiotic(authored=authored)], ruleset, measures=("CMS154",))
        assert run.counts("CMS154")["numerator"] == met, authored


def test_prior_antibiotic_of_any_status_and_pharyngitis_exclude(ruleset):
    """Unlike CMS146, the prior antibiotics are retrieved without a status or intent filter, and acute
    pharyngitis or tonsillitis is a competing diagnosis."""
    prior = antibiotic("prior", "2025-02-20T09:00:00Z", supply_days=10, status="completed", intent="plan")
    assert run_resources([*episode(), prior], ruleset).counts("CMS154")["denominator-exclusion"] == 1
    pharyngitis = diagnosis("ph", PHARYNGITIS)
    assert run_resources([*episode(), pharyngitis], ruleset).counts("CMS154") == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 1,
        "numerator": 0,
    }


def test_ongoing_uri_started_before_the_visit(ruleset):
    ongoing = [patient(birth="2019-05-01"), visit(), diagnosis("uri", URI, "2025-02-25T10:00:00Z")]
    assert run_resources(ongoing, ruleset).counts("CMS154")["initial-population"] == 1
    abated = diagnosis("uri", URI, "2025-02-25T10:00:00Z", abatement="2025-03-02T10:00:00Z")
    assert run_resources([*ongoing[:2], abated], ruleset).counts("CMS154")["initial-population"] == 0
    # 'overlaps before' to the instant: abated an hour before the visit started, that day, it does not overlap
    hour_before = diagnosis("uri", URI, "2025-02-25T10:00:00Z", abatement="2025-03-04T08:00:00Z")
    assert run_resources([*ongoing[:2], hour_before], ruleset).counts("CMS154")["initial-population"] == 0
    during = diagnosis("uri", URI, "2025-02-25T10:00:00Z", abatement="2025-03-04T09:10:00Z")
    assert run_resources([*ongoing[:2], during], ruleset).counts("CMS154")["initial-population"] == 1


def test_no_claims_codes(ruleset):
    run = run_resources(episode(), ruleset, program="mips-claims")
    assert run.measure_codes("CMS154") == []
    assert ruleset.measure("CMS154").groups[0].claims == ()


def test_explain_names_the_antibiotic(tmp_path, capsys):
    resources = [*episode(), antibiotic()]
    text = explain_text(tmp_path, capsys, "CMS154", resources)
    assert "No antibiotic ordered from the visit's start to 3 days after" in text
    assert "MedicationRequest/abx" in text
