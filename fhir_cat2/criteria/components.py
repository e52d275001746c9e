"""Judging ``components`` of an exists on Observation (``fhir_cat2.rules.components``): component values read
as the CQL reads them, and a table of thresholds by the Observation's coded value."""

from __future__ import annotations

from ..rules.base import parse_code_ref
from ..rules.components import ComponentTest, ComponentValue, ThresholdRow
from ..sources.records import ObservationRecord, ResourceRecord


def component_value(record: ObservationRecord, spec: ComponentValue) -> float | None:
    """The value of the one component coded ``spec.code`` in ``spec.unit``; None when none or several."""
    code = parse_code_ref(spec.code)
    found: float | None = None
    seen = 0
    for component in record.components:
        quantity = component.quantity
        if code not in component.codes or quantity is None or quantity.unit != spec.unit:
            continue
        seen += 1
        found = None if quantity.comparator else quantity.value
    return found if seen == 1 else None


def _row_holds(record: ObservationRecord, row: ThresholdRow, values: dict[str, float | None]) -> bool:
    system, code = parse_code_ref(row.code)
    if row.display is not None:
        if (system, code, row.display) not in record.value_displays:
            return False
    elif (system, code) not in record.value_codes:
        return False
    if not row.at_least:
        return True
    for name, threshold in row.at_least.items():
        value = values.get(name)
        if value is not None and value >= threshold:
            return True
    return False


def components_why(record: ResourceRecord, spec: ComponentTest) -> str | None:
    """Why ``record`` fails the component tests, or None when it passes."""
    if not isinstance(record, ObservationRecord):
        return "has no components"
    values = {name: component_value(record, value) for name, value in spec.values.items()}
    unknown = [name for name, value in values.items() if value is None]
    if unknown:
        return f"{', '.join(unknown)} not known (no single component in its unit)"
    if not spec.rows:
        return None
    if any(_row_holds(record, row, values) for row in spec.rows):
        return None
    shown = ", ".join(f"{name} {value:g}" for name, value in values.items() if value is not None)
    return f"value {record.shown_value} with {shown}: no row of the table holds"
