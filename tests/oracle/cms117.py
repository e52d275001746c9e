"""CMS117 childhood immunization status: generated cases (see ``cases``). A child born 15 June 2023 (2 at
the end of 2025: 42 days old on 27 July 2023, 180 days on 12 December 2023, 1st birthday 15 June 2024, 2nd
birthday 15 June 2025) with an office visit in 2025, and the ten vaccine series given (``series``), one
changed per case."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, condition, encounter, immunization, patient, procedure
from .cases import case

M = "CMS117"
BIRTH = "2023-06-15"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"

SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "dtap": ("20", ("2023-08-15", "2023-10-15", "2023-12-15", "2024-09-15")),
    "ipv": ("10", ("2023-08-15", "2023-10-15", "2024-01-15")),
    "hib": ("49", ("2023-08-15", "2023-10-15", "2024-07-15")),  # 3-dose schedule (PRP-OMP)
    "hepb": ("08", ("2023-06-16", "2023-08-15", "2023-12-15")),
    "pcv": ("133", ("2023-08-15", "2023-10-15", "2023-12-15", "2024-07-15")),
    "rv": ("119", ("2023-08-15", "2023-10-15")),  # monovalent, 2-dose schedule
    "flu": ("140", ("2023-12-15", "2024-01-20")),
    "mmr": ("03", ("2024-06-20",)),
    "vzv": ("21", ("2024-06-20",)),
    "hepa": ("83", ("2024-06-20",)),
}


def shot(name: str, index: int, cvx: str, day: str) -> dict[str, Any]:
    return immunization(f"{name}{index}", cvx, f"{day}T10:00:00Z")


def series(**changed: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Every series given on schedule, but those named: their days instead (None or (): none given)."""
    resources = []
    for name, (cvx, days) in SERIES.items():
        chosen = changed.get(name, days) if name in changed else days
        for index, day in enumerate(chosen or ()):
            resources.append(shot(name, index, cvx, day))
    return resources


def child(birth: str = BIRTH, **visit: Any) -> list[dict[str, Any]]:
    return [
        patient(birth=birth),
        encounter("visit", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z", **visit),
    ]


def diagnosed(
    cid: str, code: str, onset: str = "2024-02-01T10:00:00Z", system: str = ICD10
) -> dict[str, Any]:
    return condition(cid, code, onset=onset, system=system)


def administered(rid: str, cpt: str, day: str, system: str = CPT) -> dict[str, Any]:
    return procedure(rid, cpt, f"{day}T10:00:00Z", system=system)


case("cms117-complete", M, "every series on schedule: numerator", [*child(), *series()])
case(
    "cms117-age-3", M, "3 at the end of the period: not in the population", [*child("2022-06-15"), *series()]
)
case("cms117-no-visit", M, "no visit in the period: not in the population", [patient(birth=BIRTH), *series()])
case(
    "cms117-telephone-visit",
    M,
    "a telephone visit (CPT 98966) is a qualifying visit",
    [*child(cpt="98966"), *series()],
)
case(
    "cms117-visit-cancelled",
    M,
    "cancelled visit: not in the population",
    [*child(status="cancelled"), *series()],
)
case(
    "cms117-dtap-3",
    M,
    "three DTaP: not in the numerator",
    [*child(), *series(dtap=SERIES["dtap"][1][:3])],
)
case(
    "cms117-dtap-procedure",
    M,
    "the 4th DTaP documented as a procedure (CPT 90700) on another day: numerator",
    [*child(), *series(dtap=SERIES["dtap"][1][:3]), administered("dtap-proc", "90700", "2024-09-15")],
)
case(
    "cms117-dtap-procedure-same-day",
    M,
    "a DTaP procedure on the day of an immunization: one day, not in the numerator",
    [*child(), *series(dtap=SERIES["dtap"][1][:3]), administered("dtap-proc", "90700", "2023-12-15")],
)
case(
    "cms117-dtap-41-days",
    M,
    "first DTaP at 41 days old: not counted, not in the numerator",
    [*child(), *series(dtap=("2023-07-26", "2023-10-15", "2023-12-15", "2024-09-15"))],
)
case(
    "cms117-dtap-42-days",
    M,
    "first DTaP at 42 days old: counted, numerator",
    [*child(), *series(dtap=("2023-07-27", "2023-10-15", "2023-12-15", "2024-09-15"))],
)
case(
    "cms117-dtap-2nd-birthday",
    M,
    "4th DTaP on the 2nd birthday: numerator",
    [*child(), *series(dtap=("2023-08-15", "2023-10-15", "2023-12-15", "2025-06-15"))],
)
case(
    "cms117-dtap-after-2nd-birthday",
    M,
    "4th DTaP the day after the 2nd birthday: not in the numerator",
    [*child(), *series(dtap=("2023-08-15", "2023-10-15", "2023-12-15", "2025-06-16"))],
)
case(
    "cms117-dtap-anaphylaxis",
    M,
    "no DTaP, anaphylaxis to the vaccine in the first year: numerator",
    [*child(), *series(dtap=None), diagnosed("ana", "428281000124107", system=SNOMED)],
)
case(
    "cms117-dtap-not-done",
    M,
    "the 4th DTaP not done (status not-done): not in the numerator",
    [
        *child(),
        *series(dtap=SERIES["dtap"][1][:3]),
        immunization("dtap-nd", "20", "2024-09-15T10:00:00Z", status="not-done"),
    ],
)
case(
    "cms117-ipv-2",
    M,
    "two polio vaccines: not in the numerator",
    [*child(), *series(ipv=SERIES["ipv"][1][:2])],
)
case(
    "cms117-mmr-before-1st-birthday",
    M,
    "MMR the day before the 1st birthday: not in the numerator",
    [*child(), *series(mmr=("2024-06-14",))],
)
case(
    "cms117-mmr-on-1st-birthday",
    M,
    "MMR on the 1st birthday: numerator",
    [*child(), *series(mmr=("2024-06-15",))],
)
case(
    "cms117-mmr-diseases",
    M,
    "no MMR, measles, mumps and rubella in the first two years: numerator",
    [
        *child(),
        *series(mmr=None),
        diagnosed("me", "B05.9"),
        diagnosed("mu", "B26.9"),
        diagnosed("ru", "B06.9"),
    ],
)
case(
    "cms117-mmr-two-diseases",
    M,
    "no MMR, measles and mumps only: not in the numerator",
    [*child(), *series(mmr=None), diagnosed("me", "B05.9"), diagnosed("mu", "B26.9")],
)
case(
    "cms117-hib-4-dose-3-given",
    M,
    "three HiB, one of the 4-dose schedule (CVX 48): four needed, not in the numerator",
    [*child(), *series(hib=SERIES["hib"][1][:2]), shot("hib4-", 0, "48", "2024-07-15")],
)
case(
    "cms117-hib-4-dose-4-given",
    M,
    "four HiB, one of the 4-dose schedule: numerator",
    [*child(), *series(), shot("hib4-", 0, "48", "2024-09-15")],
)
case(
    "cms117-hepb-newborn",
    M,
    "a newborn vaccine on day 1 and two HepB after it: numerator",
    [
        *child(),
        *series(hepb=("2023-08-15", "2023-12-15")),
        administered("nb", "3E0234Z", "2023-06-16", ICD10PCS),
    ],
)
case(
    "cms117-hepb-newborn-day-8",
    M,
    "a newborn vaccine on day 8 and two HepB: not in the numerator",
    [
        *child(),
        *series(hepb=("2023-08-15", "2023-12-15")),
        administered("nb", "3E0234Z", "2023-06-23", ICD10PCS),
    ],
)
case(
    "cms117-hepb-procedure",
    M,
    "the 3rd HepB as a procedure (CPT 90744): numerator",
    [*child(), *series(hepb=("2023-08-15", "2023-12-15")), administered("hb", "90744", "2023-06-16")],
)
case(
    "cms117-hepb-disease",
    M,
    "no HepB vaccine, hepatitis B in the first two years: numerator",
    [*child(), *series(hepb=None), diagnosed("hb", "B16.9")],
)
case("cms117-vzv-missing", M, "no chicken pox vaccine: not in the numerator", [*child(), *series(vzv=None)])
case(
    "cms117-vzv-disease",
    M,
    "no chicken pox vaccine, varicella in the first two years: numerator",
    [*child(), *series(vzv=None), diagnosed("vz", "B01.9")],
)
case("cms117-pcv-3", M, "three PCV: not in the numerator", [*child(), *series(pcv=SERIES["pcv"][1][:3])])
case(
    "cms117-hepa-disease-late",
    M,
    "no HepA vaccine, hepatitis A after the 2nd birthday: not in the numerator",
    [*child(), *series(hepa=None), diagnosed("ha", "B15.9", "2025-07-01T10:00:00Z")],
)
case(
    "cms117-rv-3-dose-2-given",
    M,
    "two rotavirus, one of the 3-dose schedule (CVX 116): not in the numerator",
    [*child(), *series(rv=SERIES["rv"][1][:1]), shot("rv3-", 0, "116", "2023-10-15")],
)
case(
    "cms117-rv-3-dose-3-given",
    M,
    "three rotavirus, one of the 3-dose schedule: numerator",
    [*child(), *series(), shot("rv3-", 0, "116", "2023-12-15")],
)
case(
    "cms117-flu-1", M, "one influenza vaccine: not in the numerator", [*child(), *series(flu=("2023-12-15",))]
)
case(
    "cms117-flu-laiv",
    M,
    "one influenza vaccine and an LAIV (CVX 111) on the 2nd birthday: numerator",
    [*child(), *series(flu=("2023-12-15",)), shot("laiv", 0, "111", "2025-06-15")],
)
case(
    "cms117-flu-laiv-early",
    M,
    "one influenza vaccine and an LAIV the day before the 2nd birthday: not in the numerator",
    [*child(), *series(flu=("2023-12-15",)), shot("laiv", 0, "111", "2025-06-14")],
)
case(
    "cms117-flu-procedure-179-days",
    M,
    "an influenza procedure (CPT 90657) at 179 days old and one immunization: not in the numerator",
    [*child(), *series(flu=("2024-01-20",)), administered("flu-proc", "90657", "2023-12-11")],
)
case(
    "cms117-flu-procedure-180-days",
    M,
    "an influenza procedure at 180 days old and one immunization: numerator",
    [*child(), *series(flu=("2024-01-20",)), administered("flu-proc", "90657", "2023-12-12")],
)
case(
    "cms117-flu-immunization-60-days",
    M,
    "an influenza immunization at 60 days old counts (from 42 days): numerator",
    [*child(), *series(flu=("2023-08-14", "2024-01-20"))],
)
case(
    "cms117-hospice",
    M,
    "hospice encounter in the period: excluded",
    [
        *child(),
        *series(),
        encounter("hosp", "2025-05-01T09:00:00Z", end="2025-05-01T10:00:00Z", system=SNOMED, cpt="183919006"),
    ],
)
case(
    "cms117-hiv",
    M,
    "HIV starting in the first year: excluded",
    [*child(), *series(), diagnosed("hiv", "B20")],
)
case(
    "cms117-hiv-after-2nd-birthday",
    M,
    "HIV starting after the 2nd birthday: not excluded",
    [*child(), *series(), diagnosed("hiv", "B20", "2025-07-01T10:00:00Z")],
)
case(
    "cms117-intussusception",
    M,
    "intussusception in the first year, resolved: excluded",
    [
        *child(),
        *series(dtap=None),
        condition("int", "K56.1", onset="2024-01-10T10:00:00Z", status="resolved"),
    ],
)
case(
    "cms117-date-only-doses",
    M,
    "every dose's occurrenceDateTime a date only: numerator",
    [*child(), *[{**r, "occurrenceDateTime": r["occurrenceDateTime"][:10]} for r in series()]],
)
case(
    "cms117-procedure-period",
    M,
    "the 4th PCV a procedure with a performedPeriod from the 2nd birthday: numerator (its start counts)",
    [
        *child(),
        *series(pcv=SERIES["pcv"][1][:3]),
        procedure("pcv-proc", "90670", "2025-06-15T10:00:00Z", system=CPT, end="2025-06-16T10:00:00Z"),
    ],
)
case(
    "cms117-entered-in-error",
    M,
    "the 4th DTaP entered in error: not in the numerator",
    [
        *child(),
        *series(dtap=SERIES["dtap"][1][:3]),
        immunization("dtap-err", "20", "2024-09-15T10:00:00Z", status="entered-in-error"),
    ],
)
case(
    "cms117-visit-into-2026",
    M,
    "the only visit runs from 31 December 2025 into 2026: not during the period, not in the population",
    [
        patient(birth=BIRTH),
        encounter("visit", "2025-12-31T23:00:00Z", end="2026-01-01T01:00:00Z"),
        *series(),
    ],
)
case(
    "cms117-dose-date-in-its-own-offset",
    M,
    "first DTaP at 01:00+05:00 on the day 42 days old (the day before in UTC): its own date counts",
    [
        *child(),
        *series(dtap=SERIES["dtap"][1][1:]),
        immunization("dtap-tz", "20", "2023-07-27T01:00:00+05:00"),
    ],
)
