"""CMS128 antidepressant medication management: generated cases (see ``cases``).

Unless a case says otherwise: IPSD 15 January 2025 (the first antidepressant dispense), a patient of 45, major
depression since 1 January 2025, an office visit on 20 January 2025. Acute phase: IPSD..IPSD+114 days (9 May
2025), 84 days needed; continuation: IPSD..IPSD+231 days (3 September 2025), 180 days needed.
"""

from __future__ import annotations

from typing import Any

from ..conftest import RXNORM, condition, encounter, patient, request
from .cases import case

M = "CMS128"
SERTRALINE = "1000048"  # RxNorm, in Antidepressant Medication 2.16.840.1.113883.3.464.1003.196.12.1213
MDD = "F32.1"  # ICD-10-CM, in Major Depression 2.16.840.1.113883.3.464.1003.105.12.1007
HOSPICE_ENCOUNTER = "183919006"  # SNOMED, in Hospice Encounter 2.16.840.1.113883.3.464.1003.1003
IPSD = "2025-01-15"
UCUM = "http://unitsofmeasure.org"


def dispense(
    rid: str, handed_over: str | None, days: int | None = 30, *, status: str = "completed", **fields: Any
) -> dict[str, Any]:
    """A MedicationDispense of sertraline handed over on a day, supplying ``days`` days (daysSupply)."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": rid,
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": SERTRALINE}]},
        "subject": {"reference": "Patient/p1"},
        **fields,
    }
    if handed_over is not None:
        resource["whenHandedOver"] = f"{handed_over}T10:00:00Z"
    if days is not None:
        resource["daysSupply"] = {"value": days, "unit": "d", "system": UCUM, "code": "d"}
    return resource


def fills(*starts_and_days: tuple[str, int]) -> list[dict[str, Any]]:
    return [dispense(f"d{i}", start, days) for i, (start, days) in enumerate(starts_and_days)]


def depressed(
    *meds: dict[str, Any],
    birth: str = "1980-03-01",
    onset: str = "2025-01-01",
    visit: str = "2025-01-20",
) -> list[dict[str, Any]]:
    return [
        patient(birth=birth),
        condition("mdd", MDD, onset=onset),
        encounter("e1", f"{visit}T09:00:00Z"),
        *meds,
    ]


def order(rid: str, authored: str, days: int, status: str = "active") -> dict[str, Any]:
    return request(
        "MedicationRequest",
        rid,
        SERTRALINE,
        f"{authored}T09:00:00Z",
        system=RXNORM,
        status=status,
        supply_days=days,
    )


THREE_MONTHS = fills((IPSD, 30), ("2025-02-14", 30), ("2025-03-16", 30))
SIX_MONTHS = fills(
    (IPSD, 30),
    ("2025-02-14", 30),
    ("2025-03-16", 30),
    ("2025-04-15", 30),
    ("2025-05-15", 30),
    ("2025-06-14", 30),
)

case(
    "cms128-acute-only",
    M,
    "90 days in the acute phase, 90 in the continuation: numerator 1 only",
    depressed(*THREE_MONTHS),
)
case(
    "cms128-both-phases",
    M,
    "six 30-day fills back to back (180 days): both numerators",
    depressed(*SIX_MONTHS),
)
case(
    "cms128-continuation-179",
    M,
    "five 30-day fills and one of 29 (179 days): numerator 1 only",
    depressed(*SIX_MONTHS[:5], dispense("d5", "2025-06-14", 29)),
)
case(
    "cms128-acute-84",
    M,
    "60 days from the IPSD and a fill starting on IPSD+91: 24 days of it by IPSD+114, 84 in all: numerator 1",
    depressed(*fills((IPSD, 60), ("2025-04-16", 90))),
)
case(
    "cms128-acute-83",
    M,
    "60 days from the IPSD and a fill starting on IPSD+92: 83 days by IPSD+114: denominator",
    depressed(*fills((IPSD, 60), ("2025-04-17", 90))),
)
case(
    "cms128-overlap-counted-once",
    M,
    "fills on 15, 25 January, 24 February (30 days each): overlaps collapse to 70 days, not 90: denominator",
    depressed(*fills((IPSD, 30), ("2025-01-25", 30), ("2025-02-24", 30))),
)
case(
    "cms128-no-mdd",
    M,
    "no major depression: not in the population",
    [patient(birth="1980-03-01"), encounter("e1", "2025-01-20T09:00:00Z"), *THREE_MONTHS],
)
case(
    "cms128-mdd-60-days-before",
    M,
    "depression from IPSD-60 days (16 November 2024): in the population",
    depressed(*THREE_MONTHS, onset="2024-11-16"),
)
case(
    "cms128-mdd-61-days-before",
    M,
    "depression from IPSD-61 days (15 November 2024): not in the population",
    depressed(*THREE_MONTHS, onset="2024-11-15"),
)
case(
    "cms128-mdd-60-days-after",
    M,
    "depression from IPSD+60 days (16 March 2025): in the population",
    depressed(*THREE_MONTHS, onset="2025-03-16"),
)
case(
    "cms128-visit-61-days-after",
    M,
    "the only visit on IPSD+61 days (17 March 2025): not in the population",
    depressed(*THREE_MONTHS, visit="2025-03-17"),
)
case(
    "cms128-visit-60-days-before",
    M,
    "the only visit on IPSD-60 days (16 November 2024): in the population",
    depressed(*THREE_MONTHS, visit="2024-11-16", onset="2024-11-16"),
)
case(
    "cms128-age-18-on-ipsd",
    M,
    "18 on the IPSD (born 15 January 2007): in the population",
    depressed(*THREE_MONTHS, birth="2007-01-15"),
)
case(
    "cms128-age-17-on-ipsd",
    M,
    "17 on the IPSD (born 16 January 2007): not in the population",
    depressed(*THREE_MONTHS, birth="2007-01-16"),
)
case(
    "cms128-intake-start",
    M,
    "first fill on 1 May 2024, the intake period's first day: numerator 1",
    depressed(*fills(("2024-05-01", 90)), onset="2024-05-01", visit="2024-05-10"),
)
case(
    "cms128-before-intake",
    M,
    "the only fills start 30 April 2024, the day before the intake period: not in the population",
    depressed(*fills(("2024-04-30", 90)), onset="2024-05-01", visit="2024-05-10"),
)
case(
    "cms128-intake-end",
    M,
    "first fill on 30 April 2025, the intake period's last day: numerator 1",
    depressed(*fills(("2025-04-30", 90)), onset="2025-04-01", visit="2025-04-30"),
)
case(
    "cms128-after-intake",
    M,
    "the only fill starts 1 May 2025, after the intake period: not in the population",
    depressed(*fills(("2025-05-01", 90)), onset="2025-04-01", visit="2025-04-30"),
)
case(
    "cms128-earliest-in-intake",
    M,
    "a fill in April 2024 (before intake) and 90 days from 1 June 2024: IPSD 1 June, numerator 1",
    depressed(*fills(("2024-04-20", 30), ("2024-06-01", 90)), onset="2024-06-01", visit="2024-06-05"),
)
case(
    "cms128-cancelled-dispense",
    M,
    "the first dispense (15 January) was cancelled: IPSD 14 February, 60 days: denominator",
    depressed(dispense("d0", IPSD, 30, status="cancelled"), *THREE_MONTHS[1:]),
)
case(
    "cms128-in-progress-dispense",
    M,
    "dispenses in progress and on hold count: numerator 1",
    depressed(
        dispense("d0", IPSD, 30, status="in-progress"),
        dispense("d1", "2025-02-14", 30, status="on-hold"),
        *THREE_MONTHS[2:],
    ),
)
case(
    "cms128-quantity-and-dosage",
    M,
    "fills without daysSupply: 180 tablets, 2 a day (90 days): numerator 1",
    depressed(
        dispense(
            "d0",
            IPSD,
            None,
            quantity={"value": 180},
            dosageInstruction=[
                {
                    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1}}],
                }
            ],
        )
    ),
)
case(
    "cms128-when-prepared",
    M,
    "a 90-day fill with whenPrepared only: numerator 1",
    depressed(dispense("d0", None, 90, whenPrepared=f"{IPSD}T08:00:00Z")),
)
case(
    "cms128-active-order-before",
    M,
    "an active antidepressant order covering IPSD-110..IPSD-81 days: excluded",
    depressed(*THREE_MONTHS, order("o1", "2024-09-27", 30)),
)
case(
    "cms128-order-ended-106-before",
    M,
    "an active order covering IPSD-135..IPSD-106 days, before the 105-day window: not excluded, numerator 1",
    depressed(*THREE_MONTHS, order("o1", "2024-09-02", 30)),
)
case(
    "cms128-order-ends-day-before",
    M,
    "an active order ending the day before the IPSD: excluded",
    depressed(*THREE_MONTHS, order("o1", "2024-12-16", 30)),
)
case(
    "cms128-completed-order-before",
    M,
    "a completed order covering IPSD-110..IPSD-81 days (not active): not excluded, numerator 1",
    depressed(*THREE_MONTHS, order("o1", "2024-09-27", 30, status="completed")),
)
case(
    "cms128-order-on-ipsd",
    M,
    "an active order starting on the IPSD: not excluded, numerator 1",
    depressed(*THREE_MONTHS, order("o1", IPSD, 90)),
)
case(
    "cms128-hospice",
    M,
    "a hospice encounter in the period: excluded",
    depressed(
        *THREE_MONTHS,
        encounter("h1", "2025-06-01T09:00:00Z", cpt=HOSPICE_ENCOUNTER, system="http://snomed.info/sct"),
    ),
)
case(
    "cms128-dispense-without-supply",
    M,
    "three 30-day fills and a dispense with neither daysSupply nor quantity (no period): numerator 1",
    depressed(*THREE_MONTHS, dispense("d9", "2025-02-01", None)),
)


def tablets(rid: str, handed_over: str, count: int, per_day: int) -> dict[str, Any]:
    """A dispense of ``count`` tablets taken ``per_day`` a day, without daysSupply."""
    dosage = {
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1}}],
    }
    return dispense(rid, handed_over, None, quantity={"value": count}, dosageInstruction=[dosage])


case(
    "cms128-fractional-days",
    M,
    "61 days, then 45 tablets at 2 a day (22.5 days: its end truncated to 21 days on), 83 days: denominator",
    depressed(dispense("d0", IPSD, 61), tablets("d1", "2025-03-17", 45, 2)),
)
case(
    "cms128-days-supply-in-weeks",
    M,
    "daysSupply of 12 weeks (84 days) from the IPSD: numerator 1",
    depressed(
        dispense("d0", IPSD, None, daysSupply={"value": 12, "unit": "wk", "system": UCUM, "code": "wk"})
    ),
)
case(
    "cms128-days-supply-in-months",
    M,
    "daysSupply of 3 months from the IPSD (UCUM mo: 30.4375 days each, 91.3 days): numerator 1",
    depressed(
        dispense("d0", IPSD, None, daysSupply={"value": 3, "unit": "mo", "system": UCUM, "code": "mo"})
    ),
)
case(
    "cms128-days-supply-2-78-months",
    M,
    "daysSupply of 2.78 months from the IPSD: 84.6 days by UCUM (30.4375-day months), 83.4 by 30-day months",
    depressed(
        dispense("d0", IPSD, None, daysSupply={"value": 2.78, "unit": "mo", "system": UCUM, "code": "mo"})
    ),
)
case(
    "cms128-handed-over-late-evening",
    M,
    "first fill handed over 30 April 2025 23:30 at UTC-5 (1 May in UTC): its own day, in the intake period",
    depressed(
        {**dispense("d0", None, 90), "whenHandedOver": "2025-04-30T23:30:00-05:00"},
        onset="2025-04-01",
        visit="2025-04-30",
    ),
)
