"""CMS159 (MIPS 370) depression remission at twelve months, and the criteria it needed: the first of the
assessments above 9 (``earliest_only`` after ``values_first``), a confirmed diagnosis
(``verification_statuses``) and death by a day (``deceased``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fhir_cat2.rules.criteria_schema import ExistsCriterion

from .conftest import run_resources
from .oracle.cms159 import index_patient, phq9


def members(run):
    return run.population("CMS159")


def test_the_first_assessment_above_9_anchors_the_year(ruleset):
    """A PHQ-9 of 5 in February, then 15 in March: the index is March's (values first, then the earliest),
    so a remission 12 months after March counts."""
    resources = [
        *index_patient(),
        phq9("early", 5, "2024-03-01T09:00:00Z"),
        phq9("f", 3, "2025-03-10T09:00:00Z"),
    ]
    run = run_resources(resources, ruleset, measures=("CMS159",))
    assert members(run)["numerator"] is True


def test_a_provisional_diagnosis_is_no_depression_visit(ruleset):
    run = run_resources(index_patient(verification="provisional"), ruleset, measures=("CMS159",))
    assert members(run)["initial-population"] is False
    assert (
        members(run_resources(index_patient(), ruleset, measures=("CMS159",)))["initial-population"] is True
    )


def test_death_by_the_end_of_the_assessment_period_excludes_and_explains(ruleset):
    died = {**index_patient()[0], "deceasedDateTime": "2025-04-01"}
    run = run_resources([died, *index_patient()[1:]], ruleset, measures=("CMS159",))
    assert members(run)["denominator-exclusion"] is True
    later = {**index_patient()[0], "deceasedDateTime": "2025-06-01"}  # after 2025-05-03
    assert (
        members(run_resources([later, *index_patient()[1:]], ruleset, measures=("CMS159",)))[
            "denominator-exclusion"
        ]
        is False
    )


def test_a_deceased_boolean_has_no_date_and_does_not_exclude(ruleset):
    died = {**index_patient()[0], "deceasedBoolean": True}
    run = run_resources([died, *index_patient()[1:]], ruleset, measures=("CMS159",))
    assert members(run)["denominator-exclusion"] is False


def test_latest_and_earliest_together_or_verification_off_a_condition_are_refused():
    with pytest.raises(ValidationError, match="latest_only or earliest_only"):
        ExistsCriterion(
            resource="Observation", codes=("loinc#44261-6",), latest_only=True, earliest_only=True
        )
    with pytest.raises(ValidationError, match="verification_statuses apply to resource Condition only"):
        ExistsCriterion(
            resource="Observation", codes=("loinc#44261-6",), verification_statuses=("confirmed",)
        )
