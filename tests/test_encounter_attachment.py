"""Which encounter a reading belongs to, and which encounters get codes."""

from __future__ import annotations

from .conftest import bp_panel, encounter, patient, run_resources


def test_reading_referencing_its_encounter(ruleset):
    resources = [
        patient(),
        encounter("e1", "2025-03-04T09:00:00Z"),
        encounter("e2", "2025-03-04T15:00:00Z"),
        bp_panel("bp", 150, 95, "2025-03-04T15:10:00Z", eid="e1"),
    ]
    run = run_resources(resources, ruleset)
    assert run.codes("e1") == ["3077F", "3080F"]
    assert run.codes("e2") == []


def test_unlinked_reading_attaches_by_date(ruleset):
    resources = [
        patient(),
        encounter("e1", "2025-03-04T09:00:00Z"),
        bp_panel("bp", 150, 95, "2025-03-04T16:00:00Z", eid=None),
    ]
    assert run_resources(resources, ruleset).codes("e1") == ["3077F", "3080F"]


def test_unlinked_reading_on_another_day_does_not_attach(ruleset):
    resources = [
        patient(),
        encounter("e1", "2025-03-04T09:00:00Z"),
        bp_panel("bp", 150, 95, "2025-03-05T09:00:00Z", eid=None),
    ]
    assert run_resources(resources, ruleset).codes() == []


def test_unlinked_reading_within_a_multi_day_period_attaches(ruleset):
    resources = [
        patient(),
        encounter("stay", "2025-03-04T09:00:00Z", end="2025-03-07T12:00:00Z"),
        bp_panel("bp", 120, 70, "2025-03-06T09:00:00Z", eid=None),
    ]
    assert run_resources(resources, ruleset).codes("stay") == ["3074F", "3078F"]


def test_unlinked_reading_goes_to_the_encounter_whose_period_contains_it(ruleset):
    resources = [
        patient(),
        encounter("morning", "2025-03-04T08:00:00Z", end="2025-03-04T09:00:00Z"),
        encounter("afternoon", "2025-03-04T14:00:00Z", end="2025-03-04T15:00:00Z"),
        bp_panel("bp", 120, 70, "2025-03-04T14:30:00Z", eid=None),
    ]
    run = run_resources(resources, ruleset)
    assert run.codes("afternoon") == ["3074F", "3078F"]
    assert run.codes("morning") == []


def test_reading_linked_to_an_unknown_encounter_is_not_attached_by_date(ruleset):
    resources = [patient(), encounter("e1", "2025-03-04T09:00:00Z"), bp_panel("bp", 150, 95, eid="elsewhere")]
    assert run_resources(resources, ruleset).codes() == []


def test_cancelled_and_entered_in_error_encounters_get_no_codes(ruleset):
    for status in ("cancelled", "entered-in-error"):
        resources = [patient(), encounter(status=status), bp_panel("bp", 150, 95)]
        run = run_resources(resources, ruleset)
        assert run.codes() == [], status
        assert run.claims == []


def test_encounters_outside_the_measurement_period_get_no_codes(ruleset):
    resources = [
        patient(),
        encounter(start="2024-12-31T09:00:00Z"),
        bp_panel("bp", 150, 95, "2024-12-31T09:10:00Z"),
    ]
    assert run_resources(resources, ruleset, period=2025).codes() == []
    assert run_resources(resources, ruleset, period=2024).codes() == ["3077F", "3080F"]


def test_local_calendar_day_of_the_timestamp_is_used(ruleset):
    """A reading at 23:30 -05:00 belongs to that local day, not the next UTC day."""
    resources = [
        patient(),
        encounter("e1", "2025-03-04T20:00:00-05:00", end="2025-03-04T21:00:00-05:00"),
        bp_panel("bp", 150, 95, "2025-03-04T23:30:00-05:00", eid=None),
    ]
    assert run_resources(resources, ruleset).codes("e1") == ["3077F", "3080F"]
