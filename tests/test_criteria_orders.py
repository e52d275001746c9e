"""Medication orders read together (``fhir_cat2/criteria/orders.py``): ``more_than_one_order``,
``total_days_supplied`` and ``daily_dose`` of an exists on MedicationRequest, each judged on its own in a
one-population table (CMS156 reads them; the cumulative-duration measures will too)."""

from __future__ import annotations

from pathlib import Path
from textwrap import indent
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.rules.criteria_schema import ExistsCriterion

from .conftest import RXNORM
from .support.tables import numerator_met, one_measure_table

DRUG = "1020477"
NUMERATOR = f"""\
exists:
  resource: MedicationRequest
  label: the orders under test
  codes: ["rxnorm#{DRUG}", "rxnorm#197606", "rxnorm#393245"]
  statuses: [active, completed]
  intents: [order]
"""


def order(
    rid: str,
    authored: str = "2025-03-04T09:20:00Z",
    *,
    code: str = DRUG,
    refills: int | None = None,
    days: int | None = None,
    quantity: float | None = None,
    unit: str = "{tbl}",
    starts: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": authored,
    }
    if starts is not None:
        resource["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": {"start": starts}}}}]
    dispense: dict[str, Any] = {}
    if refills is not None:
        dispense["numberOfRepeatsAllowed"] = refills
    if days is not None:
        dispense["expectedSupplyDuration"] = {"value": days, "code": "d"}
    if quantity is not None:
        dispense["quantity"] = {"value": quantity, "unit": unit}
    if dispense:
        resource["dispenseRequest"] = dispense
    return resource


def met(tmp_path: Path, fact: str, *orders: dict[str, Any]) -> bool:
    table = one_measure_table(NUMERATOR + indent(fact, "  "), improvement_notation="decrease")
    return numerator_met(tmp_path, table, *orders)


MORE_THAN_ONE = "more_than_one_order: period"


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        ([order("a", refills=1)], True),
        ([order("a", refills=0)], False),
        ([order("a"), order("b", "2025-09-10T09:00:00Z")], True),
        ([order("a"), order("b", "2024-12-31T09:00:00Z")], False),
        ([order("a", days=30, starts="2025-03-04"), order("b", days=30, starts="2025-04-04")], True),
        ([order("a", days=30), order("b", days=30)], False),
        ([order("a", days=30, starts="2025-03-04"), order("b", days=30, starts="2026-01-04")], False),
        ([order("a", refills=1, code="197606"), order("b", "2024-05-01T09:00:00Z")], True),
    ],
    ids=[
        "a-refill",
        "no-refill",
        "two-days-in-the-window",
        "the-other-before-the-window",
        "same-day-supplies-starting-apart",
        "same-day-same-start",
        "same-day-one-start-after-the-window",
        "refill-of-another-code-of-the-criterion",
    ],
)
def test_more_than_one_order(tmp_path, orders, expected):
    assert met(tmp_path, MORE_THAN_ONE, *orders) is expected


def test_more_than_one_order_reads_its_own_window(tmp_path):
    """The window is the criterion's: two orders in 2025 are not two in its first quarter."""
    fact = "more_than_one_order: [period.start, period.start+3mo]"
    first_quarter = [order("a", "2025-01-10T09:00:00Z"), order("b", "2025-03-04T09:00:00Z")]
    assert met(tmp_path, fact, *first_quarter)
    assert not met(tmp_path, fact, order("a", "2025-01-10T09:00:00Z"), order("b", "2025-09-04T09:00:00Z"))


TOTAL = "more_than_one_order: period\ntotal_days_supplied: {gt: 90}"


@pytest.mark.parametrize(
    ("days", "expected"),
    [((45, 46), True), ((45, 45), False), ((91, None), True), ((90, None), False), ((None, None), False)],
    ids=["91-days", "90-days", "91-and-unknown", "90-and-unknown-adds-nothing", "none-known"],
)
def test_total_days_supplied_sums_the_orders(tmp_path, days, expected):
    orders = [order("a", days=days[0]), order("b", "2025-06-04T09:00:00Z", days=days[1])]
    assert met(tmp_path, TOTAL, *orders) is expected


def test_total_days_supplied_counts_refills(tmp_path):
    """7 days with 6 refills (49) and 42 days: 91."""
    orders = [order("a", days=7, refills=6), order("b", "2025-06-04T09:00:00Z", days=42)]
    assert met(tmp_path, TOTAL, *orders)


DOSE = """\
daily_dose:
  band: {gt: 0.125}
  strengths:
    rxnorm#197606: {value: 0.25, unit: mg}
    rxnorm#393245: {value: 0.05, unit: mg/mL}"""


@pytest.mark.parametrize(
    ("dispensed", "expected"),
    [
        ({"code": "197606", "quantity": 30, "days": 30}, True),  # 0.25 mg/d
        ({"code": "197606", "quantity": 30, "days": 60}, False),  # 0.125 mg/d: not above
        ({"code": "197606", "quantity": 30, "days": 30, "refills": 1}, False),  # 60 days supplied
        ({"code": "393245", "quantity": 150, "unit": "mL", "days": 30}, True),  # 0.25 mg/d
        ({"code": "393245", "quantity": 150, "days": 30}, False),  # mg/mL but not in mL: unknown
        ({"code": "197606", "quantity": 30}, False),  # days supplied unknown
        ({"quantity": 30, "days": 30}, False),  # no strength for its code
    ],
    ids=["above", "at", "refill-doubles-the-days", "ml", "solution-not-in-ml", "no-days", "no-strength"],
)
def test_daily_dose(tmp_path, dispensed, expected):
    assert met(tmp_path, DOSE, order("a", **dispensed)) is expected


def test_order_tests_apply_to_medication_requests_only():
    with pytest.raises(ValidationError, match="MedicationRequest only"):
        ExistsCriterion.model_validate(
            {"resource": "Procedure", "codes": ["snomed#1"], "total_days_supplied": {"gt": 90}}
        )
