"""Named deviations from the published measure logic.

By default every measure follows its published CQL. A deviation is a deliberate, documented reading of the
evidence that the CQL does not make (a Synthea-style BP panel counted as blood pressure, a PHQ-9 total
counted as a depression screening...). Each is off for MeasureReports and claims codes unless the run turns
it on (``logic.deviations`` in the configuration, ``--deviation NAME``); the CPT II code rules of program
``hedis`` read the evidence with every deviation on, their own documented reading.

The rules table marks what a deviation adds (``deviations: {NAME: {...}}`` on a measurement or an exists
criterion); the engine honours the one without a table element (refuted Conditions). Readings that count
only through a deviation carry its name, so explain trails and the run report can say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Deviation:
    name: str
    measures: tuple[str, ...]
    what: str
    """What it does, in a sentence."""
    changes: str
    """What changes in the results when it is on."""


DEVIATIONS: dict[str, Deviation] = {
    d.name: d
    for d in (
        Deviation(
            "bp-panel-55284-4",
            ("CMS165", "CMS22"),
            "LOINC 55284-4 (blood pressure systolic and diastolic, the panel Synthea writes) counts as a"
            " blood pressure panel; the QI-Core bp profile the CQL retrieves fixes 85354-9.",
            "patients whose blood pressures are recorded only as 55284-4 panels get readings: CMS165"
            " numerators and CMS22 categories follow them instead of 'no blood pressure'.",
        ),
        Deviation(
            "bp-separate-observations",
            ("CMS165", "CMS22"),
            "systolic (8480-6) and diastolic (8462-4) sent as separate Observations count as blood pressure;"
            " the CQL reads only the components of a bp panel.",
            "readings from separate systolic/diastolic Observations count; without it only panels do.",
        ),
        Deviation(
            "unit-conversion",
            ("CMS122",),
            "HbA1c in mmol/mol is converted to % by the IFCC master equation (NGSP% = 0.0915 x IFCC + 2.15);"
            " the CQL compares quantities by UCUM, where 1 mmol/mol is 0.1 %.",
            "an HbA1c documented in mmol/mol is judged at its clinical % value (86 mmol/mol = 10.0 %) instead"
            " of its UCUM value (8.6 %).",
        ),
        Deviation(
            "phq-totals",
            ("CMS2",),
            "PHQ-9/PHQ-9M (44261-6, 89204-2) and PHQ-2 (55758-7) totals count as depression screenings,"
            " positive at 10 and 3 or more; the CQL reads only the coded results of 73832-8 and 73831-0.",
            "patients screened only with a PHQ total are screened (and in the numerator when negative, or"
            " positive with follow-up) instead of not screened.",
        ),
        Deviation(
            "ignore-refuted-conditions",
            ("CMS165", "CMS122", "CMS2", "CMS69", "CMS22", "CMS138", "CMS139", "CMS130"),
            "Conditions whose verificationStatus is refuted or entered-in-error never count; the CQL reads no"
            " verificationStatus.",
            "a refuted diagnosis no longer puts a patient in an initial population or an exclusion.",
        ),
    )
}

ALL: frozenset[str] = frozenset(DEVIATIONS)


def parse(names: Iterable[str], where: str = "logic.deviations") -> frozenset[str]:
    """The deviations named (``all`` for every one); an unknown name is a configuration error."""
    wanted = {n.strip() for n in names if n.strip()}
    if "all" in wanted:
        return ALL
    unknown = sorted(wanted - ALL)
    if unknown:
        raise ConfigError(
            f"{where}: unknown deviation(s) {', '.join(unknown)} (known: {', '.join(sorted(ALL))})"
        )
    return frozenset(wanted)
