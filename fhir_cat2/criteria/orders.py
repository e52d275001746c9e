"""Medication orders read together, as the CQL of the medication measures reads them: which orders are
'more than one order' in a window, an order's average daily dose, and the days a set of orders supplies.

Pure functions of MedicationRequest records (``EventRecord``: ``authored``, ``supply``, ``refills``,
``dispensed``, ``days_supplied`` are read by the field map, ``sources/fields.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from ..rules.criteria_schema import Strength
from ..sources.records import Code, EventRecord, ResourceRecord


def more_than_one_order(
    orders: list[ResourceRecord], low: date, high: date
) -> tuple[list[ResourceRecord], list[ResourceRecord]]:
    """(the orders that are 'more than one order' in [low, high], the others), each order judged with the
    whole list (the CQL's moreThanOneOrder: ``OrderMedication1 with OrderMedication2 such that ...``):

    - authored in the window, allowing a refill (numberOfRepeatsAllowed >= 1); or
    - authored in the window, with another order authored in the window on another day; or
    - authored in the window, with another order authored the same day, the supply periods of the two
      starting on different days, both in the window.
    """
    authored_days = [_authored_day(order) for order in orders]
    supply_starts = [_supply_start(order) for order in orders]
    in_window = [day is not None and low <= day <= high for day in authored_days]
    kept: list[ResourceRecord] = []
    dropped: list[ResourceRecord] = []
    for i, order in enumerate(orders):
        if not in_window[i]:
            dropped.append(order)
            continue
        refills = order.refills if isinstance(order, EventRecord) else None
        if refills is not None and refills >= 1:
            kept.append(order)
            continue
        day, start = authored_days[i], supply_starts[i]
        start_ok = start is not None and low <= start <= high
        for j in range(len(orders)):
            other_day = authored_days[j]
            if other_day is None:
                continue
            if other_day != day:
                if in_window[j]:
                    break
            elif start_ok:
                other_start = supply_starts[j]
                if other_start is not None and other_start != start and low <= other_start <= high:
                    break
        else:
            dropped.append(order)
            continue
        kept.append(order)
    return kept, dropped


def average_daily_dose(order: ResourceRecord, strengths: Mapping[Code, Strength]) -> float | None:
    """The order's average daily dose in mg/d, as the CQL's averageDailyDose: dispensed quantity x strength
    per unit (of the first code of ``strengths`` the order has) / days supplied. None when the days
    supplied are unknown, no code of the order has a strength, or a mg/mL strength meets a quantity not
    in mL."""
    if not isinstance(order, EventRecord):
        return None
    codes = order.codes
    strength = next((found for code, found in strengths.items() if code in codes), None)
    days, dispensed = order.days_supplied, order.dispensed
    if strength is None or days is None or dispensed is None or not days:
        return None
    if strength.unit == "mg/mL" and dispensed.unit != "mL":
        return None
    return dispensed.value * strength.value / days


def total_days_supplied(orders: Iterable[ResourceRecord]) -> float | None:
    """The days the orders supply, summed (CQL Sum: unknown days are left out; None when none is known)."""
    known = [o.days_supplied for o in orders if isinstance(o, EventRecord) and o.days_supplied is not None]
    return sum(known) if known else None


def _authored_day(order: ResourceRecord) -> date | None:
    authored = order.authored if isinstance(order, EventRecord) else None
    return authored.start_day if authored is not None else None


def _supply_start(order: ResourceRecord) -> date | None:
    supply = order.supply if isinstance(order, EventRecord) else None
    return supply.start_day if supply is not None else None
