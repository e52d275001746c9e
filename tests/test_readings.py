"""Reading selection: de-duplication, status/category/absent-value filters, lowest of the latest day,
and the units that cannot be used (which go to quarantine)."""

from __future__ import annotations

from .conftest import a1c, bp_panel, encounter, patient, quantity_obs, run_resources


def test_panel_and_standalone_copies_of_one_reading_are_deduplicated(ruleset):
    """A source may send the panel and standalone 8480-6/8462-4 for the same reading: count it once."""
    resources = [
        patient(),
        encounter(),
        bp_panel("panel", 128, 78),
        quantity_obs("sys", "8480-6", 128, "mm[Hg]", category="vital-signs"),
        quantity_obs("dia", "8462-4", 78, "mm[Hg]", category="vital-signs"),
    ]
    run = run_resources(resources, ruleset)
    readings = run.outcomes[0].readings
    assert len(readings.of("systolic_bp")) == 1
    assert len(readings.of("diastolic_bp")) == 1
    assert run.codes() == ["3074F", "3078F"]


def test_standalone_observations_alone_are_read(ruleset):
    resources = [
        patient(),
        encounter(),
        quantity_obs("sys", "8480-6", 141, "mm[Hg]", category="vital-signs"),
        quantity_obs("dia", "8462-4", 92, "mm[Hg]", category="vital-signs"),
    ]
    assert run_resources(resources, ruleset).codes() == ["3077F", "3080F"]


def test_older_panel_code_55284_4_is_read(ruleset):
    run = run_resources([patient(), encounter(), bp_panel("bp", 131, 79, code="55284-4")], ruleset)
    assert run.codes() == ["3075F", "3078F"]


def test_lowest_of_the_latest_day(ruleset):
    """Lowest systolic and lowest diastolic of the latest reading day, possibly from different readings."""
    resources = [
        patient(),
        encounter(start="2025-03-04T08:00:00Z", end="2025-03-05T18:00:00Z"),
        bp_panel("day1", 110, 60, "2025-03-04T09:00:00Z"),
        bp_panel("day2-a", 150, 82, "2025-03-05T09:00:00Z"),
        bp_panel("day2-b", 142, 91, "2025-03-05T10:00:00Z"),
    ]
    run = run_resources(resources, ruleset)
    assert run.codes() == ["3077F", "3079F"]  # 142 (>= 140), 82 (80-89); day 1's lower values do not count


def test_hba1c_lowest_on_latest_result_date(ruleset):
    resources = [
        patient(),
        encounter(start="2025-03-01T08:00:00Z", end="2025-03-03T08:00:00Z"),
        a1c("early", 6.0, "2025-03-01T08:00:00Z"),
        a1c("late-high", 8.4, "2025-03-03T07:00:00Z"),
        a1c("late-low", 7.2, "2025-03-03T09:00:00Z"),
    ]
    assert run_resources(resources, ruleset).codes() == ["3051F"]


def test_only_final_amended_corrected_count(ruleset):
    for status in ("preliminary", "registered", "cancelled", "entered-in-error", "unknown"):
        run = run_resources([patient(), encounter(), bp_panel("bp", 150, 95, status=status)], ruleset)
        assert run.codes() == [], status
    for status in ("final", "amended", "corrected"):
        run = run_resources([patient(), encounter(), bp_panel("bp", 150, 95, status=status)], ruleset)
        assert run.codes() == ["3077F", "3080F"], status


def test_ignored_observations_are_explained(ruleset):
    run = run_resources([patient(), encounter(), bp_panel("bp", 150, 95, status="preliminary")], ruleset)
    assert any("status 'preliminary'" in why for _, why in run.outcomes[0].readings.ignored)


def test_absent_value_is_ignored(ruleset):
    resources = [patient(), encounter(), a1c("a", None, absent=True), a1c("b", 6.2, "2025-03-01T08:00:00Z")]
    # The absent result is later, but has no value: the earlier value decides.
    assert run_resources(resources, ruleset).codes() == ["3044F"]


def test_absent_bp_component_is_ignored(ruleset):
    panel = bp_panel("bp", 131, None)
    panel["component"].append(
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
            "dataAbsentReason": {"text": "x"},
        }
    )
    assert run_resources([patient(), encounter(), panel], ruleset).codes() == ["3075F"]


def test_hba1c_needs_laboratory_category(ruleset):
    """CMS122 counts only laboratory results (isLaboratoryTestPerformed)."""
    assert run_resources([patient(), encounter(), a1c("a", 9.5, category=None)], ruleset).codes() == []
    assert run_resources([patient(), encounter(), a1c("a", 9.5, category="survey")], ruleset).codes() == []
    assert run_resources([patient(), encounter(), a1c("a", 9.5)], ruleset).codes() == ["3046F"]


def test_bp_category_other_than_vital_signs_is_ignored_but_missing_category_is_accepted(ruleset):
    assert (
        run_resources([patient(), encounter(), bp_panel("bp", 150, 95, category="survey")], ruleset).codes()
        == []
    )
    assert run_resources(
        [patient(), encounter(), bp_panel("bp", 150, 95, category=None)], ruleset
    ).codes() == [
        "3077F",
        "3080F",
    ]


def test_unconvertible_unit_is_quarantined_and_valid_readings_survive(ruleset):
    resources = [
        patient(),
        encounter(),
        a1c("bad", 48, unit="mg/dL"),
        bp_panel("bp", 125, 75),
    ]
    run = run_resources(resources, ruleset)
    assert run.codes() == ["3074F", "3078F"]
    reasons = [q.reason for q in run.sink.quarantined]
    assert len(reasons) == 1
    assert "Observation/bad" in reasons[0] and "'mg/dL' cannot be converted to '%'" in reasons[0]
    assert run.sink.quarantined[0].src.position == "item[2]"


def test_hba1c_without_unit_is_quarantined(ruleset):
    run = run_resources([patient(), encounter(), a1c("a", 7.5, unit=None)], ruleset)
    assert run.codes() == []
    assert "has no unit" in run.sink.quarantined[0].reason


def test_bp_without_unit_is_assumed_mm_hg(ruleset):
    resource = quantity_obs("sys", "8480-6", 141, None, category="vital-signs")
    run = run_resources([patient(), encounter(), resource], ruleset)
    assert run.codes() == ["3077F"]


def test_bp_in_kpa_is_converted(ruleset):
    run = run_resources([patient(), encounter(), bp_panel("bp", 20.0, 11.0, unit="kPa")], ruleset)
    assert run.codes() == ["3077F", "3079F"]  # 150.0 / 82.5 mm[Hg]


def test_value_with_comparator_is_quarantined(ruleset):
    """MIPS 001: a distinct numeric result is required; ranges like '<9' do not count."""
    run = run_resources([patient(), encounter(), a1c("a", 9, comparator="<")], ruleset)
    assert run.codes() == []
    assert "comparator" in run.sink.quarantined[0].reason


def test_implausible_value_is_quarantined(ruleset):
    run = run_resources([patient(), encounter(), bp_panel("bp", 1300, 80)], ruleset)
    assert run.codes() == ["3079F"]  # the diastolic of the same panel is still used
    assert "plausible range" in run.sink.quarantined[0].reason


def test_observation_without_effective_time_is_quarantined(ruleset):
    resource = a1c("a", 7.5)
    del resource["effectiveDateTime"]
    run = run_resources([patient(), encounter(), resource], ruleset)
    assert run.codes() == []
    assert "no effective" in run.sink.quarantined[0].reason


def test_known_code_with_unknown_system_is_quarantined(ruleset):
    resource = a1c("a", 7.5)
    resource["code"]["coding"][0]["system"] = "LN"
    run = run_resources([patient(), encounter(), resource], ruleset)
    assert run.codes() == []
    reason = run.sink.quarantined[0].reason
    assert "code 4548-4 has system 'LN'" in reason and "http://loinc.org" in reason


def test_loinc_system_variants_are_normalised(ruleset):
    resource = a1c("a", 7.5)
    resource["code"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.1"
    assert run_resources([patient(), encounter(), resource], ruleset).codes() == ["3051F"]
