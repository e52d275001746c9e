"""CMS137 initiation and engagement of substance use disorder treatment: generated cases (see ``cases``).

The default episode: an office visit on 1 April 2025 (09:00-09:40) during which alcohol dependence is
diagnosed (onset 09:10). Initiation window: 1-14 April; engagement: 1-34 days after the first initiation."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, RXNORM, SNOMED, condition, encounter, patient, procedure, request
from .cases import case

M = "CMS137"
HCPCS = "http://www.nlm.nih.gov/research/umls/hcpcs"  # the system the SUD value sets list HCPCS under
SUD = "F10.20"  # ICD-10-CM alcohol dependence, in Substance Use Disorder (...106.12.1001)
PSYCHOTHERAPY = "90832"  # CPT, in Psych Visit Psychotherapy 2.16.840.1.113883.3.526.3.1496
TELEPHONE = "98966"  # CPT, in Telephone Visits 2.16.840.1.113883.3.464.1003.101.12.1080
ED = "99283"  # CPT, in Emergency Department Evaluation and Management Visit
SHORT_ACTING = "1010600"  # RxNorm buprenorphine/naloxone, in SUD Short Acting Medication
LONG_ACTING = "1996184"  # RxNorm buprenorphine extended-release injection, in SUD Long Acting Medication
SHORT_GIVEN = "G2078"  # HCPCS, in SUD Short Acting Medication Administration (not in SUD Treatment)
LONG_GIVEN = "J0570"  # HCPCS, in SUD Long Acting Medication Administration (not in SUD Treatment)
HOSPICE = "183919006"  # SNOMED, in Hospice Encounter
EPISODE = "2025-04-01T09:00:00Z"


def at(day: str) -> str:
    return f"{day}T10:00:00Z"


def episode(
    day: str = "2025-04-01",
    *,
    cpt: str = "99213",
    status: str = "finished",
    eid: str = "ep",
    cid: str = "sud",
) -> list[dict[str, Any]]:
    """A visit on ``day`` (09:00-09:40) during which a SUD diagnosis starts (09:10)."""
    return [
        encounter(eid, f"{day}T09:00:00Z", end=f"{day}T09:40:00Z", cpt=cpt, status=status, diagnoses=[cid]),
        condition(cid, SUD, onset=f"{day}T09:10:00Z", system=ICD10),
    ]


def adult(*extra: dict[str, Any], birth: str = "1990-05-01", **kw: Any) -> list[dict[str, Any]]:
    return [patient(birth=birth, gender="male"), *episode(**kw), *extra]


def psychotherapy(rid: str, day: str, **kw: Any) -> dict[str, Any]:
    return procedure(rid, PSYCHOTHERAPY, at(day), system=CPT, **kw)


def telehealth(eid: str, day: str, cid: str = "sud") -> dict[str, Any]:
    return encounter(eid, at(day), cpt=TELEPHONE, diagnoses=[cid])


def order(rid: str, day: str, code: str = SHORT_ACTING, **kw: Any) -> dict[str, Any]:
    return request("MedicationRequest", rid, code, at(day), system=RXNORM, **kw)


def given(rid: str, day: str, code: str = SHORT_GIVEN) -> dict[str, Any]:
    return procedure(rid, code, at(day), system=HCPCS)


# -------------------------------------------------------------------------------------- initiation
case("cms137-no-treatment", M, "new SUD episode, no treatment: both denominators", adult())
case(
    "cms137-init-psychotherapy",
    M,
    "psychotherapy 4 days after the episode: initiation, no engagement",
    adult(psychotherapy("pt", "2025-04-05")),
)
case(
    "cms137-init-same-day",
    M,
    "psychotherapy on the episode's day: initiation",
    adult(psychotherapy("pt", "2025-04-01")),
)
case(
    "cms137-init-day-13",
    M,
    "psychotherapy on 14 April (13 days after): initiation",
    adult(psychotherapy("pt", "2025-04-14")),
)
case(
    "cms137-init-day-14",
    M,
    "psychotherapy on 15 April (14 days after): no initiation",
    adult(psychotherapy("pt", "2025-04-15")),
)
case(
    "cms137-init-not-completed",
    M,
    "psychotherapy in progress 4 days after: no initiation",
    adult(psychotherapy("pt", "2025-04-05", status="in-progress")),
)
case(
    "cms137-init-telehealth",
    M,
    "telephone visit with the SUD diagnosis 3 days after: initiation",
    adult(telehealth("tel", "2025-04-04")),
)
case(
    "cms137-telephone-episode-alone",
    M,
    "the episode is itself a telephone visit with the SUD diagnosis, nothing after: no initiation",
    adult(cpt=TELEPHONE),
)
case(
    "cms137-telephone-episode-and-call",
    M,
    "a telephone episode and another telephone visit with the SUD diagnosis 2 days later: initiation",
    adult(telehealth("tel", "2025-04-03"), cpt=TELEPHONE),
)
case(
    "cms137-init-order",
    M,
    "short-acting SUD medication ordered 2 days after: initiation",
    adult(order("bup", "2025-04-03")),
)
case(
    "cms137-init-order-plan",
    M,
    "the SUD medication request 2 days after is a plan: no initiation",
    adult(order("bup", "2025-04-03", intent="plan")),
)
case(
    "cms137-init-administration",
    M,
    "short-acting MAT administered 3 days after: initiation",
    adult(given("mat", "2025-04-04")),
)
# -------------------------------------------------------------------------------------- engagement
case(
    "cms137-engaged-two-psychotherapies",
    M,
    "initiation 2 April, psychotherapy 10 April and 6 May (34 days after): engagement",
    adult(
        psychotherapy("p1", "2025-04-02"),
        psychotherapy("p2", "2025-04-10"),
        psychotherapy("p3", "2025-05-06"),
    ),
)
case(
    "cms137-engaged-too-late",
    M,
    "initiation 2 April, psychotherapy 10 April and 7 May (35 days after): no engagement",
    adult(
        psychotherapy("p1", "2025-04-02"),
        psychotherapy("p2", "2025-04-10"),
        psychotherapy("p3", "2025-05-07"),
    ),
)
case(
    "cms137-engaged-one-only",
    M,
    "initiation 2 April, one more psychotherapy on 10 April: no engagement",
    adult(psychotherapy("p1", "2025-04-02"), psychotherapy("p2", "2025-04-10")),
)
case(
    "cms137-engaged-same-day-only",
    M,
    "three psychotherapies all on 2 April (the initiation's day): no engagement",
    adult(
        psychotherapy("p1", "2025-04-02"),
        psychotherapy("p2", "2025-04-02"),
        psychotherapy("p3", "2025-04-02"),
    ),
)
case(
    "cms137-engaged-long-acting-order",
    M,
    "initiation by order 2 April, long-acting order 20 April: engagement",
    adult(order("bup", "2025-04-02"), order("xr", "2025-04-20", LONG_ACTING)),
)
case(
    "cms137-engaged-long-acting-given",
    M,
    "initiation 2 April, long-acting MAT administered 1 May: engagement",
    adult(psychotherapy("p1", "2025-04-02"), given("inj", "2025-05-01", LONG_GIVEN)),
)
case(
    "cms137-engaged-procedure-and-call",
    M,
    "initiation 2 April, psychotherapy 9 April and a telephone visit with the SUD diagnosis 20 April:"
    " engagement",
    adult(
        psychotherapy("p1", "2025-04-02"), psychotherapy("p2", "2025-04-09"), telehealth("tel", "2025-04-20")
    ),
)
case(
    "cms137-engaged-order-and-call",
    M,
    "initiation 2 April, a short-acting order 12 April and a telephone visit 20 April: engagement",
    adult(psychotherapy("p1", "2025-04-02"), order("bup", "2025-04-12"), telehealth("tel", "2025-04-20")),
)
case(
    "cms137-engaged-two-orders",
    M,
    "initiation by MAT 2 April, two short-acting orders 12 and 25 April: engagement",
    adult(given("mat", "2025-04-02"), order("bup1", "2025-04-12"), order("bup2", "2025-04-25")),
)
case(
    "cms137-engaged-from-first-initiation",
    M,
    "initiations 2 April (psychotherapy) and 10 April (order); a long-acting order 7 May is 35 days after the"
    " first: no engagement",
    adult(
        psychotherapy("p1", "2025-04-02"), order("bup", "2025-04-10"), order("xr", "2025-05-07", LONG_ACTING)
    ),
)
case(
    "cms137-engaged-from-first-initiation-in",
    M,
    "initiations 2 April (psychotherapy) and 10 April (order); a long-acting order 6 May is 34 days after the"
    " first: engagement",
    adult(
        psychotherapy("p1", "2025-04-02"), order("bup", "2025-04-10"), order("xr", "2025-05-06", LONG_ACTING)
    ),
)
# -------------------------------------------------------------------------------------- population
case(
    "cms137-history-60-days",
    M,
    "psychotherapy on 31 January, 60 days before the episode: not a new episode",
    adult(psychotherapy("old", "2025-01-31"), psychotherapy("pt", "2025-04-05")),
)
case(
    "cms137-history-61-days",
    M,
    "psychotherapy on 30 January, 61 days before the episode: new episode, initiation",
    adult(psychotherapy("old", "2025-01-30"), psychotherapy("pt", "2025-04-05")),
)
case(
    "cms137-history-visit",
    M,
    "an office visit with a SUD diagnosis on 1 March: not a new episode",
    [
        *adult(psychotherapy("pt", "2025-04-05")),
        encounter("old", at("2025-03-01"), diagnoses=["olddx"]),
        condition("olddx", "F11.20", onset="2024-06-01", system=ICD10),
    ],
)
case(
    "cms137-history-ed-visit",
    M,
    "only an ED visit with a SUD diagnosis on 1 March (the CQL excepts ED visits): new episode",
    [
        *adult(psychotherapy("pt", "2025-04-05")),
        encounter("old", at("2025-03-01"), cpt=ED, diagnoses=["olddx"]),
        condition("olddx", "F11.20", onset="2024-06-01", system=ICD10),
    ],
)
case(
    "cms137-history-order",
    M,
    "a SUD medication ordered on 22 March: not a new episode",
    adult(order("old", "2025-03-22"), psychotherapy("pt", "2025-04-05")),
)
case(
    "cms137-first-episode-counts",
    M,
    "episodes on 1 February and 1 June; treatment only after June's: the first has none, denominators only",
    [
        *adult(day="2025-02-01"),
        *episode("2025-06-01", eid="ep2", cid="sud2"),
        psychotherapy("pt", "2025-06-03"),
    ],
)
case(
    "cms137-diagnosis-before-visit",
    M,
    "the SUD diagnosis started the day before the visit: no new episode",
    [
        patient(birth="1990-05-01", gender="male"),
        encounter("ep", EPISODE, end="2025-04-01T09:40:00Z", diagnoses=["sud"]),
        condition("sud", SUD, onset="2025-03-31T09:10:00Z", system=ICD10),
        psychotherapy("pt", "2025-04-05"),
    ],
)
case(
    "cms137-episode-november-14",
    M,
    "episode on 14 November (47 days before the end of the period): initial population",
    adult(psychotherapy("pt", "2025-11-20"), day="2025-11-14"),
)
case(
    "cms137-episode-november-15",
    M,
    "episode on 15 November (46 days before the end of the period): not in the population",
    adult(psychotherapy("pt", "2025-11-20"), day="2025-11-15"),
)
case(
    "cms137-episode-cancelled",
    M,
    "the episode visit was cancelled: not in the population",
    adult(psychotherapy("pt", "2025-04-05"), status="cancelled"),
)
case(
    "cms137-episode-ed",
    M,
    "the episode is an ED visit (in progress), psychotherapy 4 days later: initiation",
    adult(psychotherapy("pt", "2025-04-05"), cpt=ED, status="in-progress"),
)
case(
    "cms137-age-13",
    M,
    "13 on 1 January 2025: initial population, stratum 13-17",
    adult(psychotherapy("pt", "2025-04-05"), birth="2012-01-01"),
)
case(
    "cms137-age-12",
    M,
    "13 on 2 January 2025 (12 at the start of the period): not in the population",
    adult(psychotherapy("pt", "2025-04-05"), birth="2012-01-02"),
)
case(
    "cms137-age-70",
    M,
    "70 at the start of the period: stratum 65+",
    adult(psychotherapy("pt", "2025-04-05"), birth="1954-06-01"),
)
case(
    "cms137-hospice",
    M,
    "hospice encounter in the period: denominator exclusion",
    adult(psychotherapy("pt", "2025-04-05"), encounter("hosp", at("2025-09-01"), system=SNOMED, cpt=HOSPICE)),
)
case(
    "cms137-diagnosis-date-only",
    M,
    "the SUD diagnosis's onset is the visit's date without a time: compared with the visit's instants",
    [
        patient(birth="1990-05-01", gender="male"),
        encounter("ep", EPISODE, end="2025-04-01T09:40:00Z", diagnoses=["sud"]),
        condition("sud", SUD, onset="2025-04-01", system=ICD10),
        psychotherapy("pt", "2025-04-05"),
    ],
)
case(
    "cms137-episode-last-year",
    M,
    "the only episode is on 15 December 2024: not in the population",
    adult(psychotherapy("pt", "2024-12-20"), day="2024-12-15"),
)
case(
    "cms137-episode-across-new-year",
    M,
    "the only episode visit runs from 31 December 2024 to 2 January 2025 (not within the period): not in the"
    " population",
    [
        patient(birth="1990-05-01", gender="male"),
        encounter("ep", "2024-12-31T20:00:00Z", end="2025-01-02T10:00:00Z", cpt="99223", diagnoses=["sud"]),
        condition("sud", SUD, onset="2025-01-01T09:10:00Z", system=ICD10),
        psychotherapy("pt", "2025-01-05"),
    ],
)
case(
    "cms137-inpatient-episode",
    M,
    "an initial inpatient visit 1-3 April during which the diagnosis starts on the 2nd; psychotherapy"
    " 14 April (13 days after the visit's start): initiation",
    [
        patient(birth="1990-05-01", gender="male"),
        encounter("ep", EPISODE, end="2025-04-03T10:00:00Z", cpt="99223", diagnoses=["sud"]),
        condition("sud", SUD, onset="2025-04-02T09:10:00Z", system=ICD10),
        psychotherapy("pt", "2025-04-14"),
    ],
)
case(
    "cms137-telehealth-without-diagnosis",
    M,
    "a telephone visit 3 days after without a SUD diagnosis: no initiation",
    adult(encounter("tel", at("2025-04-04"), cpt=TELEPHONE)),
)
case(
    "cms137-engaged-long-acting-in-treatment-set",
    M,
    "initiation 2 April, HCPCS G2069 (long-acting MAT, also a SUD treatment) 20 April: engagement",
    adult(psychotherapy("p1", "2025-04-02"), given("inj", "2025-04-20", "G2069")),
)
case(
    "cms137-history-order-60-days",
    M,
    "a SUD medication ordered 31 January, 60 days before: not a new episode",
    adult(order("old", "2025-01-31"), psychotherapy("pt", "2025-04-05")),
)
case(
    "cms137-history-order-61-days",
    M,
    "a SUD medication ordered 30 January, 61 days before: new episode",
    adult(order("old", "2025-01-30"), psychotherapy("pt", "2025-04-05")),
)
