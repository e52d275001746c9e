"""Identity links between a candidate and a bound resource (``criteria/links.py``): ``refers_to`` (the
candidate's basedOn refers to it: CMS50's report Task based on the referral) and ``other_than`` (any
resource but it: CMS137's telehealth visit that is not the episode itself); the strict ``starts_after`` /
``ends_after`` relations; and Task, read by code, ``for``, executionPeriod and basedOn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.rules.criteria_schema import ExistsCriterion
from fhir_cat2.sources.fields import to_record
from fhir_cat2.sources.records import EventRecord, Src
from fhir_cat2.sources.server import default_types, patient_param
from fhir_cat2.sources.server import patient_of as server_patient_of
from fhir_cat2.sources.values import plain_resolver

from .conftest import LOINC, encounter, request
from .support.tables import numerator_met, one_measure_table

REFERRAL = "103696004"
AUTHORED = "2025-03-04T09:30:00Z"

NUMERATOR = """\
exists:
  resource: {bound}
  label: The bound resource
  codes: ["{bound_code}"]
  during: period
  as: bound
  where:
    exists: {fact}
"""


def met(tmp_path: Path, fact: str, *resources: dict[str, Any], bound: str = "ServiceRequest") -> bool:
    bound_code = "snomed#103696004" if bound == "ServiceRequest" else "cpt#99213"
    table = one_measure_table(NUMERATOR.format(fact=fact, bound=bound, bound_code=bound_code))
    visit = encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:40:00Z")
    return numerator_met(tmp_path, table, *resources, visit=visit)


def task(tid: str, based_on: list[str], ends: str = "2025-04-02T15:00:00Z") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": tid,
        "status": "completed",
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": "11488-4"}]},
        "for": {"reference": "Patient/p1"},
        "executionPeriod": {"start": ends, "end": ends},
        "basedOn": [{"reference": ref} for ref in based_on],
    }


REPORT = "{resource: Task, codes: ['loinc#11488-4'], refers_to: bound}"


@pytest.mark.parametrize(
    ("based_on", "expected"),
    [
        (["ServiceRequest/ref"], True),
        (["CarePlan/x", "ServiceRequest/ref"], True),
        (["ServiceRequest/other"], False),
        ([], False),
    ],
    ids=["based-on-it", "one-of-several", "another-request", "no-basedOn"],
)
def test_refers_to_needs_a_basedOn_naming_the_bound_resource(tmp_path, based_on, expected):
    referral = request("ServiceRequest", "ref", REFERRAL, AUTHORED)
    assert met(tmp_path, REPORT, referral, task("t", based_on)) is expected


def test_refers_to_holds_per_bound_resource(tmp_path):
    """Two referrals, one report: the exists over referrals holds through the one it is based on."""
    first = request("ServiceRequest", "ref", REFERRAL, AUTHORED)
    second = request("ServiceRequest", "ref2", REFERRAL, "2025-05-01T09:00:00Z")
    assert met(tmp_path, REPORT, first, second, task("t", ["ServiceRequest/ref2"])) is True


TELEHEALTH = (
    "{resource: Encounter, codes: ['cpt#99213'], other_than: bound,"
    " starts_during: [bound.start, bound.start+13d]}"
)


def test_other_than_leaves_the_bound_resource_out(tmp_path):
    alone = met(tmp_path, TELEHEALTH, bound="Encounter")
    later = encounter("e2", "2025-03-10T09:00:00Z")
    assert alone is False
    assert met(tmp_path, TELEHEALTH, later, bound="Encounter") is True


@pytest.mark.parametrize(
    ("ends", "expected"),
    [("2025-03-04T09:30:00Z", False), ("2025-03-04T09:31:00Z", True), ("2025-03-04T09:00:00Z", False)],
    ids=["at-the-instant", "a-minute-after", "before"],
)
def test_ends_after_is_strict_at_instant_precision(tmp_path, ends, expected):
    fact = (
        "{resource: Task, codes: ['loinc#11488-4'], refers_to: bound, ends_after: bound.start,"
        " precision: instant}"
    )
    referral = request("ServiceRequest", "ref", REFERRAL, AUTHORED)
    assert met(tmp_path, fact, referral, task("t", ["ServiceRequest/ref"], ends)) is expected


@pytest.mark.parametrize(
    ("ends", "expected"), [("2025-03-04T23:00:00Z", False), ("2025-03-05T08:00:00Z", True)]
)
def test_ends_after_by_day(tmp_path, ends, expected):
    fact = "{resource: Task, codes: ['loinc#11488-4'], refers_to: bound, ends_after: bound.start}"
    referral = request("ServiceRequest", "ref", REFERRAL, AUTHORED)
    assert met(tmp_path, fact, referral, task("t", ["ServiceRequest/ref"], ends)) is expected


def test_starts_after_is_strict(tmp_path):
    fact = "{resource: Task, codes: ['loinc#11488-4'], starts_after: bound.start}"
    referral = request("ServiceRequest", "ref", REFERRAL, AUTHORED)
    assert met(tmp_path, fact, referral, task("t", [], "2025-03-04T20:00:00Z")) is False
    assert met(tmp_path, fact, referral, task("t", [], "2025-03-05T08:00:00Z")) is True


def test_a_task_reads_its_code_patient_period_and_basedOn():
    record = to_record(task("t", ["ServiceRequest/ref"]), Src("test", "entry[0]"), plain_resolver, "t")
    assert isinstance(record, EventRecord)
    assert record.patient_id == "p1" and record.status == "completed"
    assert record.codes == frozenset({(LOINC, "11488-4")})
    assert record.when is not None and record.when.end_day.isoformat() == "2025-04-02"
    assert record.based_on == ("ServiceRequest/ref",)


def test_links_name_a_bound_resource_not_the_period():
    with pytest.raises(ValidationError, match="'period' is not a resource"):
        ExistsCriterion.model_validate({"resource": "Task", "codes": ["loinc#1-1"], "refers_to": "period"})
    with pytest.raises(ValidationError, match="'period' is not a resource"):
        ExistsCriterion.model_validate({"resource": "Task", "codes": ["loinc#1-1"], "other_than": "period"})


def test_a_sync_reads_tasks_and_finds_their_patient_in_for(ruleset):
    assert "Task" in default_types(ruleset.relevant_codes())
    assert patient_param("Task", set()) == "patient"
    assert server_patient_of(task("t", [])) == "p1"
