"""CMS156 use of high-risk medications in older adults (three groups): generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, condition, encounter, patient
from .cases import case

M = "CMS156"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
DIPHENHYDRAMINE = "1020477"  # 50 mg capsule: Potentially Harmful Antihistamines
NITROFURANTOIN = "1648759"  # 100 mg capsule: Potentially Harmful Antiinfectives
DIGOXIN_TABLET = "197606"  # 0.25 mg tablet
DIGOXIN_SOLUTION = "393245"  # 0.05 mg/mL oral solution
DOXEPIN_3 = "966787"  # 3 mg tablet
DOXEPIN_10 = "1000048"  # 10 mg capsule
LURASIDONE = "1040031"  # 40 mg tablet: Potentially Harmful Antipsychotics
LORAZEPAM = "197901"  # 1 mg tablet: Potentially Harmful Benzodiazepines


def older(birth: str = "1955-06-01", **kw: Any) -> list[dict[str, Any]]:
    """A patient (70 at the end of 2025) with an office visit on 4 March 2025."""
    return [patient(birth=birth), encounter(**kw)]


def order(
    rid: str,
    code: str,
    authored: str = "2025-03-04T09:20:00Z",
    *,
    refills: int | None = None,
    days: int | None = None,
    quantity: float | None = None,
    unit: str = "{tbl}",
    dose: float | None = None,
    per_day: int | None = None,
    starts: str | None = None,
    status: str = "active",
) -> dict[str, Any]:
    """A MedicationRequest (RxNorm): ``days`` its expected supply duration, ``quantity`` (``unit``) what is
    dispensed, ``dose`` and ``per_day`` its single dosage (``per_day`` times every day), ``starts`` the start
    of its dosage bounds."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": authored,
    }
    dosage: dict[str, Any] = {}
    repeat: dict[str, Any] = {}
    if per_day is not None:
        repeat.update(frequency=per_day, period=1, periodUnit="d")
    if starts is not None:
        repeat["boundsPeriod"] = {"start": starts}
    if repeat:
        dosage["timing"] = {"repeat": repeat}
    if dose is not None:
        dosage["doseAndRate"] = [
            {"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}
        ]
    if dosage:
        resource["dosageInstruction"] = [dosage]
    dispense: dict[str, Any] = {}
    if refills is not None:
        dispense["numberOfRepeatsAllowed"] = refills
    if quantity is not None:
        dispense["quantity"] = {"value": quantity, "unit": unit, "system": UCUM, "code": unit}
    if days is not None:
        dispense["expectedSupplyDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
    if dispense:
        resource["dispenseRequest"] = dispense
    return resource


# ------------------------------------------------------------------------------ initial population
case(
    "cms156-age-65", M, "65 on the last day of the period, an office visit: denominator", older("1960-12-31")
)
case(
    "cms156-age-64", M, "64 on the last day of the period: not in the initial population", older("1961-01-01")
)
case(
    "cms156-visit-99211",
    M,
    "only an encounter typed CPT 99211 (in none of the value sets), two antihistamine orders: numerator 1",
    [
        *older(cpt="99211", system=CPT),
        order("a1", DIPHENHYDRAMINE, "2025-03-04T09:20:00Z", days=30),
        order("a2", DIPHENHYDRAMINE, "2025-05-06T09:20:00Z", days=30),
    ],
)
case(
    "cms156-visit-kinds",
    M,
    "a nursing facility discharge (99315), a telephone visit (99441), a cancelled office visit: denominator",
    [
        patient(birth="1950-02-01"),
        encounter("nf", "2025-02-03T10:00:00Z", cpt="99315", system=CPT),
        encounter("tel", "2025-06-03T10:00:00Z", cpt="99441", system=CPT),
        encounter("x", "2025-07-03T10:00:00Z", status="cancelled"),
    ],
)
case(
    "cms156-cancelled-visit-only",
    M,
    "only a cancelled office visit: not in the initial population",
    [patient(birth="1950-02-01"), encounter("x", "2025-07-03T10:00:00Z", status="cancelled")],
)

# ------------------------------------------------------------------------------ exclusions
case(
    "cms156-hospice",
    M,
    "a hospice encounter in the period and two antihistamine orders: denominator exclusion",
    [
        *older(),
        encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006"),
        order("a1", DIPHENHYDRAMINE, refills=1),
    ],
)
case(
    "cms156-palliative",
    M,
    "a palliative care encounter in the period: denominator exclusion",
    [*older(), encounter("pal", "2025-05-01T09:00:00Z", system=SNOMED, cpt="305686008")],
)

# ------------------------------------------------------------------------------ numerator 1
case(
    "cms156-refill",
    M,
    "one antihistamine order allowing a refill: numerator 1 (and 3)",
    [*older(), order("a1", DIPHENHYDRAMINE, refills=1, days=30)],
)
case(
    "cms156-two-days",
    M,
    "two antihistamine orders on different days of the period: numerator 1",
    [
        *older(),
        order("a1", DIPHENHYDRAMINE, "2025-03-04T09:20:00Z", days=30),
        order("a2", DIPHENHYDRAMINE, "2025-09-10T09:20:00Z", days=30),
    ],
)
case(
    "cms156-same-day-two-starts",
    M,
    "two antihistamine orders the same day whose dosage starts differ (4 March, 4 April): numerator 1",
    [
        *older(),
        order("a1", DIPHENHYDRAMINE, days=30, starts="2025-03-04"),
        order("a2", DIPHENHYDRAMINE, days=30, starts="2025-04-04"),
    ],
)
case(
    "cms156-same-day-same-start",
    M,
    "two antihistamine orders the same day, both starting that day: not numerator 1",
    [*older(), order("a1", DIPHENHYDRAMINE, days=30), order("a2", DIPHENHYDRAMINE, days=30)],
)
case(
    "cms156-one-order",
    M,
    "one antihistamine order without refills, another one authored in 2024: not numerator 1",
    [
        *older(),
        order("a1", DIPHENHYDRAMINE, days=30),
        order("a0", DIPHENHYDRAMINE, "2024-11-04T09:20:00Z", days=30),
    ],
)
case(
    "cms156-anti-infective-91-days",
    M,
    "two nitrofurantoin orders supplying 45 and 46 days (expected supply duration): numerator 1",
    [
        *older(),
        order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", days=45),
        order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", days=46),
    ],
)
case(
    "cms156-anti-infective-90-days",
    M,
    "two nitrofurantoin orders supplying 45 days each (expected supply duration): not numerator 1",
    [
        *older(),
        order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", days=45),
        order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", days=45),
    ],
)
case(
    "cms156-anti-infective-dosed-91-days",
    M,
    "two nitrofurantoin orders, 90 and 92 capsules twice a day (45 + 46 days): numerator 1",
    [
        *older(),
        order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", quantity=90, dose=1, per_day=2),
        order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", quantity=92, dose=1, per_day=2),
    ],
)
case(
    "cms156-anti-infective-dosed-90-days",
    M,
    "two nitrofurantoin orders, 90 capsules twice a day each (45 + 45 days): not numerator 1",
    [
        *older(),
        order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", quantity=90, dose=1, per_day=2),
        order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", quantity=90, dose=1, per_day=2),
    ],
)
case(
    "cms156-anti-infective-refills-91-days",
    M,
    "nitrofurantoin for 7 days with 6 refills (49 days) and for 42 days: numerator 1",
    [
        *older(),
        order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", days=7, refills=6),
        order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", days=42),
    ],
)
case(
    "cms156-anti-infective-no-frequency",
    M,
    "two nitrofurantoin orders, 46 and 45 capsules one at a time, no frequency: days unknown, not numerator",
    [
        *older(),
        order("n1", NITROFURANTOIN, "2025-03-04T09:20:00Z", quantity=46, dose=1),
        order("n2", NITROFURANTOIN, "2025-06-04T09:20:00Z", quantity=45, dose=1),
    ],
)
case(
    "cms156-digoxin-above",
    M,
    "two digoxin 0.25 mg orders, 30 tablets for 30 days (0.25 mg/d): numerator 1",
    [
        *older(),
        order("d1", DIGOXIN_TABLET, "2025-03-04T09:20:00Z", quantity=30, days=30),
        order("d2", DIGOXIN_TABLET, "2025-04-04T09:20:00Z", quantity=30, days=30),
    ],
)
case(
    "cms156-digoxin-at-limit",
    M,
    "two digoxin 0.25 mg orders, 30 tablets for 60 days (0.125 mg/d): not numerator 1",
    [
        *older(),
        order("d1", DIGOXIN_TABLET, "2025-03-04T09:20:00Z", quantity=30, days=60),
        order("d2", DIGOXIN_TABLET, "2025-05-04T09:20:00Z", quantity=30, days=60),
    ],
)
case(
    "cms156-digoxin-solution",
    M,
    "two digoxin 0.05 mg/mL solution orders, 150 mL, 5 mL a day (30 days: 0.25 mg/d): numerator 1",
    [
        *older(),
        order("d1", DIGOXIN_SOLUTION, "2025-03-04T09:20:00Z", quantity=150, unit="mL", dose=5, per_day=1),
        order("d2", DIGOXIN_SOLUTION, "2025-04-04T09:20:00Z", quantity=150, unit="mL", dose=5, per_day=1),
    ],
)
case(
    "cms156-digoxin-solution-not-in-ml",
    M,
    "two digoxin 0.05 mg/mL solution orders dispensed in {tbl}, not mL: daily dose unknown, not numerator 1",
    [
        *older(),
        order("d1", DIGOXIN_SOLUTION, "2025-03-04T09:20:00Z", quantity=150, dose=5, per_day=1),
        order("d2", DIGOXIN_SOLUTION, "2025-04-04T09:20:00Z", quantity=150, dose=5, per_day=1),
    ],
)
case(
    "cms156-doxepin-3mg",
    M,
    "two doxepin 3 mg orders, 30 tablets once a day (3 mg/d): not numerator 1",
    [
        *older(),
        order("x1", DOXEPIN_3, "2025-03-04T09:20:00Z", quantity=30, dose=1, per_day=1),
        order("x2", DOXEPIN_3, "2025-04-04T09:20:00Z", quantity=30, dose=1, per_day=1),
    ],
)
case(
    "cms156-doxepin-10mg",
    M,
    "two doxepin 10 mg orders, 30 capsules once a day (10 mg/d): numerator 1",
    [
        *older(),
        order("x1", DOXEPIN_10, "2025-03-04T09:20:00Z", quantity=30, dose=1, per_day=1),
        order("x2", DOXEPIN_10, "2025-04-04T09:20:00Z", quantity=30, dose=1, per_day=1),
    ],
)


# ------------------------------------------------------------------------------ numerator 2
def antipsychotics() -> list[dict[str, Any]]:
    """Two lurasidone orders, the first (the index) on 4 March 2025."""
    return [
        order("p1", LURASIDONE, "2025-03-04T09:20:00Z", days=30),
        order("p2", LURASIDONE, "2025-05-06T09:20:00Z", days=30),
    ]


case(
    "cms156-antipsychotic",
    M,
    "two antipsychotic orders, no schizophrenia or bipolar disorder: numerator 2 and 3",
    [*older(), *antipsychotics()],
)
case(
    "cms156-antipsychotic-dx-ended-before",
    M,
    "two antipsychotic orders, schizophrenia that ended on 31 December 2023 (the day before): numerator 2",
    [
        *older(),
        *antipsychotics(),
        condition("sz", "F20.0", system=ICD10, onset="2020-01-01", status="resolved", abatement="2023-12-31"),
    ],
)
case(
    "cms156-antipsychotic-dx-on-index-day",
    M,
    "two antipsychotic orders, schizophrenia diagnosed the morning of the first order: not numerator 2",
    [*older(), *antipsychotics(), condition("sz", "F20.0", system=ICD10, onset="2025-03-04T08:00:00Z")],
)
case(
    "cms156-benzodiazepine-anxiety",
    M,
    "a lorazepam order with refills, generalized anxiety disorder since 2020: not numerator 2",
    [
        *older(),
        order("b1", LORAZEPAM, "2025-03-04T09:20:00Z", refills=2, days=30),
        condition("gad", "F41.1", system=ICD10, onset="2020-01-01"),
    ],
)
case(
    "cms156-benzodiazepine",
    M,
    "a lorazepam order with refills, no diagnosis it treats, an antihistamine refill: numerator 1, 2, 3",
    [
        *older(),
        order("b1", LORAZEPAM, "2025-03-04T09:20:00Z", refills=2, days=30),
        order("a1", DIPHENHYDRAMINE, refills=1, days=30),
    ],
)
