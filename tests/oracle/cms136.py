"""CMS136 follow-up care for children prescribed ADHD medication: generated cases (see ``cases``).

Unless a case says otherwise: a child born 1 June 2015 (8 to 9 in the intake period, 1 March 2024 to 28
February 2025), an office visit on 20 August 2024, a methylphenidate order authored 1 September 2024 (the
IPSD), a follow-up office visit 15 September 2024 (IPSD+14 days). Continuation visits are on 1 November 2024
and 10 January 2025; group 2 needs the orders to cover 210 days of IPSD..IPSD+300 days (28 June 2025).
"""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, RXNORM, SNOMED, condition, encounter, patient, request
from .cases import case

M = "CMS136"
METHYLPHENIDATE = "1091133"  # RxNorm, in Methylphenidate 2.16.840.1.113883.3.464.1003.1176
GUANFACINE = "862006"  # RxNorm, in Guanfacine Medications 2.16.840.1.113883.3.464.1003.196.11.1252
METHAMPHETAMINE = "977860"  # RxNorm, a direct code of the CQL
VIRTUAL = "98970"  # CPT, in Virtual Encounter 2.16.840.1.113883.3.464.1003.101.12.1089
INPATIENT = "183452005"  # SNOMED, in Encounter Inpatient 2.16.840.1.113883.3.666.5.307
ADHD = "F90.0"  # ICD-10-CM, in Mental Behavioral and Neurodevelopmental Disorders ...105.12.1203
NARCOLEPSY = "G47.411"  # ICD-10-CM, in Narcolepsy 2.16.840.1.113883.3.464.1003.114.12.1011
HOSPICE_ENCOUNTER = "183919006"  # SNOMED, in Hospice Encounter 2.16.840.1.113883.3.464.1003.1003
IPSD = "2024-09-01"
ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"


def order(
    rid: str,
    authored: str = IPSD,
    days: int = 30,
    refills: int = 0,
    *,
    code: str = METHYLPHENIDATE,
    status: str = "active",
    intent: str = "order",
) -> dict[str, Any]:
    """An ADHD MedicationRequest authored on a day, supplying ``days`` days per fill, with refills."""
    resource = request(
        "MedicationRequest",
        rid,
        code,
        f"{authored}T09:00:00Z",
        system=RXNORM,
        status=status,
        intent=intent,
        supply_days=days,
    )
    if refills:
        resource["dispenseRequest"]["numberOfRepeatsAllowed"] = refills
    return resource


def visit(eid: str, day: str, cpt: str = "99213", **kw: Any) -> dict[str, Any]:
    return encounter(eid, f"{day}T10:00:00Z", cpt=cpt, **kw)


def inpatient(day: str, *, rank: int = 1, use: str = "billing") -> list[dict[str, Any]]:
    """An inpatient stay starting on ``day`` with an ADHD diagnosis of that rank and use."""
    stay = encounter(
        "ip", f"{day}T10:00:00Z", end=f"{day}T18:00:00Z", cpt=INPATIENT, system=SNOMED, klass="IMP"
    )
    stay["diagnosis"] = [
        {
            "condition": {"reference": "Condition/dx"},
            "use": {"coding": [{"system": ROLE, "code": use}]},
            "rank": rank,
        }
    ]
    return [stay, condition("dx", ADHD, onset=day, system=ICD10)]


def child(
    *resources: dict[str, Any],
    birth: str = "2015-06-01",
    first_visit: str = "2024-08-20",
    meds: list[dict[str, Any]] | None = None,
    follow_up: str | None = "2024-09-15",
) -> list[dict[str, Any]]:
    made = [patient(birth=birth), visit("e0", first_visit)]
    made += meds if meds is not None else [order("o1")]
    if follow_up:
        made.append(visit("e1", follow_up))
    return [*made, *resources]


EIGHT_MONTHS = [order("o1", IPSD, 30, 7)]  # 240 days
CONTINUATION = [visit("e2", "2024-11-01"), visit("e3", "2025-01-10")]

case(
    "cms136-initiation-met",
    M,
    "a follow-up visit on IPSD+14 days, 30 days of medication: group 1 met only",
    child(),
)
case("cms136-no-follow-up", M, "no follow-up visit: group 1 denominator", child(follow_up=None))
case(
    "cms136-follow-up-on-ipsd", M, "the only follow-up on the IPSD itself: not counted", child(follow_up=IPSD)
)
case("cms136-follow-up-day-30", M, "follow-up on IPSD+30 days: group 1 met", child(follow_up="2024-10-01"))
case(
    "cms136-follow-up-day-31", M, "follow-up on IPSD+31 days: group 1 not met", child(follow_up="2024-10-02")
)
case(
    "cms136-both-met",
    M,
    "240 days of medication, follow-up and two continuation visits: both groups met",
    child(*CONTINUATION, meds=EIGHT_MONTHS),
)
case(
    "cms136-one-continuation-visit",
    M,
    "240 days, one continuation visit: group 2 denominator",
    child(CONTINUATION[0], meds=EIGHT_MONTHS),
)
case(
    "cms136-continuation-same-day",
    M,
    "two continuation visits on the same day: one visit day, group 2 denominator",
    child(CONTINUATION[0], visit("e3", "2024-11-01", cpt="99214"), meds=EIGHT_MONTHS),
)
case(
    "cms136-continuation-virtual",
    M,
    "a continuation office visit and a virtual one on another day: group 2 met",
    child(CONTINUATION[0], visit("e3", "2025-01-10", cpt=VIRTUAL), meds=EIGHT_MONTHS),
)
case(
    "cms136-continuation-two-virtual",
    M,
    "two virtual continuation visits only: group 2 denominator",
    child(visit("e2", "2024-11-01", cpt=VIRTUAL), visit("e3", "2025-01-10", cpt=VIRTUAL), meds=EIGHT_MONTHS),
)
case(
    "cms136-continuation-day-300",
    M,
    "continuation visits on IPSD+31 and IPSD+300 days: group 2 met",
    child(visit("e2", "2024-10-02"), visit("e3", "2025-06-28"), meds=EIGHT_MONTHS),
)
case(
    "cms136-continuation-day-301",
    M,
    "continuation visits on IPSD+31 and IPSD+301 days: group 2 denominator",
    child(visit("e2", "2024-10-02"), visit("e3", "2025-06-29"), meds=EIGHT_MONTHS),
)
case(
    "cms136-210-days",
    M,
    "one order of 210 days: in group 2",
    child(*CONTINUATION, meds=[order("o1", IPSD, 210)]),
)
case(
    "cms136-209-days",
    M,
    "one order of 209 days: not in group 2",
    child(*CONTINUATION, meds=[order("o1", IPSD, 209)]),
)
case(
    "cms136-same-drug-rolled-out",
    M,
    "two methylphenidate orders of 120 days on the IPSD: laid end to end, 240 days, in group 2",
    child(*CONTINUATION, meds=[order("o1", IPSD, 120), order("o2", IPSD, 120)]),
)
case(
    "cms136-two-drugs-collapsed",
    M,
    "methylphenidate and guanfacine, 120 days each from the IPSD: collapsed, 120 days, not in group 2",
    child(*CONTINUATION, meds=[order("o1", IPSD, 120), order("o2", IPSD, 120, code=GUANFACINE)]),
)
case(
    "cms136-two-drugs-in-sequence",
    M,
    "methylphenidate 120 days, then guanfacine 100 days from IPSD+120: 220 days, in group 2",
    child(*CONTINUATION, meds=[order("o1", IPSD, 120), order("o2", "2024-12-30", 100, code=GUANFACINE)]),
)
case(
    "cms136-methamphetamine",
    M,
    "methamphetamine 5 mg (a direct code) for 240 days: both groups met",
    child(*CONTINUATION, meds=[order("o1", IPSD, 30, 7, code=METHAMPHETAMINE)]),
)
case(
    "cms136-intake-first-day",
    M,
    "the only order on 1 March 2024, the intake period's first day: a Date against its DateTime start is"
    " uncertain in the CQL (no 'day of'), not in the population",
    child(first_visit="2024-02-20", meds=[order("o1", "2024-03-01")], follow_up="2024-03-15"),
)
case(
    "cms136-intake-second-day",
    M,
    "first order on 2 March 2024: group 1 met",
    child(first_visit="2024-02-20", meds=[order("o1", "2024-03-02")], follow_up="2024-03-15"),
)
case(
    "cms136-before-intake",
    M,
    "the only order on 29 February 2024, before the intake period: not in the population",
    child(first_visit="2024-02-20", meds=[order("o1", "2024-02-29")], follow_up="2024-03-15"),
)
case(
    "cms136-intake-last-day",
    M,
    "the only order on 28 February 2025, the intake period's last day: uncertain against its end"
    " (23:59:59), not in the population",
    child(first_visit="2025-02-20", meds=[order("o1", "2025-02-28")], follow_up="2025-03-10"),
)
case(
    "cms136-intake-day-before-last",
    M,
    "first order on 27 February 2025: group 1 met",
    child(first_visit="2025-02-20", meds=[order("o1", "2025-02-27")], follow_up="2025-03-10"),
)
case(
    "cms136-after-intake",
    M,
    "the only order on 1 March 2025, after the intake period: not in the population",
    child(first_visit="2025-02-20", meds=[order("o1", "2025-03-01")], follow_up="2025-03-10"),
)
case(
    "cms136-history-active",
    M,
    "an active order of 60 days from 1 February 2024 overlaps the 120 days before the 1 April order: no IPSD",
    child(
        meds=[order("o0", "2024-02-01", 60), order("o1", "2024-04-01")],
        first_visit="2024-03-20",
        follow_up="2024-04-10",
    ),
)
case(
    "cms136-history-ended-121-days",
    M,
    "an active order ending 2 December 2023 (IPSD-121 days): the 1 April order is the IPSD, group 1 met",
    child(
        meds=[order("o0", "2023-11-03", 30), order("o1", "2024-04-01")],
        first_visit="2024-03-20",
        follow_up="2024-04-10",
    ),
)
case(
    "cms136-history-completed",
    M,
    "a completed (not active) order in the 120 days before: the 1 April order is the IPSD, group 1 met",
    child(
        meds=[order("o0", "2024-02-01", 60, status="completed"), order("o1", "2024-04-01")],
        first_visit="2024-03-20",
        follow_up="2024-04-10",
    ),
)
case(
    "cms136-second-order-is-ipsd",
    M,
    "an order on 1 April 2024 after one active from 1 February: the clean September order is the IPSD",
    child(
        meds=[order("o0", "2024-02-01", 60), order("o1", "2024-04-01"), order("o2", IPSD)],
        first_visit="2024-08-20",
    ),
)
case(
    "cms136-plan-only",
    M,
    "the only ADHD request is a plan: not in the population",
    child(meds=[order("o1", intent="plan")]),
)
case("cms136-age-6", M, "6 on 1 March 2024 (born 1 March 2018): in the population", child(birth="2018-03-01"))
case(
    "cms136-age-5",
    M,
    "5 on 1 March 2024 (born 2 March 2018): not in the population",
    child(birth="2018-03-02"),
)
case(
    "cms136-age-12",
    M,
    "12 on 28 February 2025 (born 1 March 2012): in the population",
    child(birth="2012-03-01"),
)
case(
    "cms136-age-13",
    M,
    "13 on 28 February 2025 (born 28 February 2012): not in the population",
    child(birth="2012-02-28"),
)
case(
    "cms136-visit-6-months-before",
    M,
    "the only earlier visit on 1 March 2024 (IPSD-6 months): in the population",
    child(first_visit="2024-03-01"),
)
case(
    "cms136-visit-too-early",
    M,
    "the only earlier visit on 29 February 2024: not in the population",
    child(first_visit="2024-02-29"),
)
case(
    "cms136-inpatient-day-10",
    M,
    "an inpatient stay with a principal ADHD diagnosis on IPSD+10 days: in neither population",
    child(*CONTINUATION, *inpatient("2024-09-11"), meds=EIGHT_MONTHS),
)
case(
    "cms136-inpatient-secondary",
    M,
    "an inpatient stay on IPSD+10 days with ADHD ranked 2: both groups met",
    child(*CONTINUATION, *inpatient("2024-09-11", rank=2), meds=EIGHT_MONTHS),
)
case(
    "cms136-inpatient-admission-dx",
    M,
    "an inpatient stay on IPSD+10 days with ADHD ranked 1 as admission (not billing) diagnosis: both met",
    child(*CONTINUATION, *inpatient("2024-09-11", use="AD"), meds=EIGHT_MONTHS),
)
case(
    "cms136-inpatient-day-100",
    M,
    "an inpatient stay with a principal ADHD diagnosis on IPSD+100 days: group 1 only",
    child(*CONTINUATION, *inpatient("2024-12-10"), meds=EIGHT_MONTHS),
)
case(
    "cms136-inpatient-on-ipsd",
    M,
    "an inpatient stay with a principal ADHD diagnosis on the IPSD: both groups met",
    child(*CONTINUATION, *inpatient(IPSD), meds=EIGHT_MONTHS),
)
case(
    "cms136-narcolepsy",
    M,
    "narcolepsy since 2023: excluded",
    child(condition("nc", NARCOLEPSY, onset="2023-05-01"), meds=EIGHT_MONTHS),
)
case(
    "cms136-narcolepsy-after-period",
    M,
    "narcolepsy from January 2026: not excluded",
    child(condition("nc", NARCOLEPSY, onset="2026-01-05"), meds=EIGHT_MONTHS),
)
case(
    "cms136-hospice",
    M,
    "a hospice encounter in the period: excluded",
    child(visit("h1", "2025-05-01", cpt=HOSPICE_ENCOUNTER, system=SNOMED)),
)
case(
    "cms136-order-without-supply",
    M,
    "240 days of methylphenidate and another methylphenidate order with no supply (no period): both met",
    child(
        *CONTINUATION,
        meds=[
            *EIGHT_MONTHS,
            request("MedicationRequest", "o9", METHYLPHENIDATE, "2024-10-01T09:00:00Z", system=RXNORM),
        ],
    ),
)
case(
    "cms136-quantity-refills",
    M,
    "60 tablets, 2 a day (30 days), 7 refills: 240 days, both groups met",
    child(
        *CONTINUATION,
        meds=[
            {
                **order("o1"),
                "dispenseRequest": {"quantity": {"value": 60}, "numberOfRepeatsAllowed": 7},
                "dosageInstruction": [
                    {
                        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                        "doseAndRate": [{"doseQuantity": {"value": 1}}],
                    }
                ],
            }
        ],
    ),
)
case(
    "cms136-supply-in-months",
    M,
    "one order with an expected supply of 6.9 months: 210.0 days by UCUM (207 by 30-day months), in group 2",
    child(
        *CONTINUATION,
        meds=[
            {
                **order("o1"),
                "dispenseRequest": {
                    "expectedSupplyDuration": {
                        "value": 6.9,
                        "unit": "mo",
                        "system": "http://unitsofmeasure.org",
                        "code": "mo",
                    }
                },
            }
        ],
    ),
)
case(
    "cms136-bounds-start",
    M,
    "an order authored 25 February 2024 whose dosage starts 5 March 2024: the IPSD is 5 March, group 1 met",
    child(
        meds=[
            {
                **order("o1", "2024-02-25"),
                "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2024-03-05"}}}}],
            }
        ],
        first_visit="2024-02-20",
        follow_up="2024-03-20",
    ),
)
case(
    "cms136-visit-spans-ipsd",
    M,
    "the only earlier visit runs from the day before the IPSD to the day after: not in the 6 months up to it",
    [
        patient(birth="2015-06-01"),
        encounter("e0", "2024-08-31T10:00:00Z", end="2024-09-02T10:00:00Z"),
        order("o1"),
        visit("e1", "2024-09-15"),
    ],
)
