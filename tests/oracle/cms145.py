"""CMS145 CAD beta-blocker therapy after an MI or with LVSD (two groups): generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, condition, encounter, patient, procedure
from .cases import case
from .heart import (
    VISIT_1,
    VISIT_1_END,
    VISIT_2,
    allergy_intolerance,
    confirmed,
    ejection_fraction,
    heart_rate,
    medication,
)

M = "CMS145"
CARVEDILOL = "200031"  # in Beta Blocker Therapy for LVSD and in Beta Blocker Therapy
METOPROLOL_TARTRATE = "866514"  # in Beta Blocker Therapy only


def cad(
    birth: str = "1958-05-01", *, lvsd: bool = False, mi_onset: str | None = None, visits: int = 2
) -> list[dict[str, Any]]:
    """Confirmed active CAD (I25.10) since 2019, office visits on 4 March (09:00-09:30) and 10 June 2025; EF
    30% in February (group 1) and/or an MI with the given onset (group 2)."""
    resources = [
        patient(birth=birth),
        confirmed("cad", "I25.10", system=ICD10, onset="2019-01-01"),
        encounter("e1", VISIT_1, end=VISIT_1_END),
    ]
    if visits > 1:
        resources.append(encounter("e2", VISIT_2))
    if lvsd:
        resources.append(ejection_fraction("ef", 30))
    if mi_onset is not None:
        resources.append(condition("mi", "I21.4", onset=mi_onset, status="resolved", abatement=mi_onset))
    return resources


case(
    "cms145-lvsd-ordered",
    M,
    "CAD with EF 30%, carvedilol ordered at the visit: group 1 numerator",
    [*cad(lvsd=True), medication("bb", CARVEDILOL)],
)
case("cms145-lvsd-not-treated", M, "CAD with EF 30%, no beta-blocker: group 1 denominator", cad(lvsd=True))
case(
    "cms145-lvsd-metoprolol-tartrate",
    M,
    "CAD with EF 30%, metoprolol tartrate ordered (not a beta-blocker for LVSD): group 1 not met",
    [*cad(lvsd=True), medication("bb", METOPROLOL_TARTRATE)],
)
case(
    "cms145-mi-ordered",
    M,
    "CAD with an MI in 2023 and no LVSD, metoprolol tartrate ordered at the visit: group 2 numerator",
    [*cad(mi_onset="2023-05-01"), medication("bb", METOPROLOL_TARTRATE)],
)
case(
    "cms145-mi-taking",
    M,
    "CAD with an MI in 2023, beta-blocker dosage period through 2025: group 2 numerator (currently taking)",
    [
        *cad(mi_onset="2023-05-01"),
        medication("bb", METOPROLOL_TARTRATE, "2023-05-10T09:00:00Z", bounds=("2023-05-10", "2025-12-31")),
    ],
)
case(
    "cms145-mi-not-treated",
    M,
    "CAD with an MI in 2023, no beta-blocker: group 2 denominator",
    cad(mi_onset="2023-05-01"),
)
case(
    "cms145-mi-over-3-years",
    M,
    "MI in 2021, more than 3 years before both visits: not in group 2's denominator",
    cad(mi_onset="2021-06-01"),
)
case(
    "cms145-mi-and-lvsd",
    M,
    "MI in 2023 and EF 30%: group 1 (LVSD) only, group 2 needs no LVSD finding",
    [*cad(lvsd=True, mi_onset="2023-05-01"), medication("bb", CARVEDILOL)],
)
case("cms145-cad-only", M, "CAD without MI or LVSD: initial population only", cad())
case(
    "cms145-cabg-no-cad-diagnosis",
    M,
    "no CAD diagnosis but a CABG in 2020 and EF 30%: a qualifying CAD encounter, group 1",
    [
        patient(birth="1958-05-01"),
        encounter("e1", VISIT_1, end=VISIT_1_END),
        encounter("e2", VISIT_2),
        procedure("cabg", "33510", "2020-02-01T10:00:00Z", system=CPT),
        ejection_fraction("ef", 30),
    ],
)
case(
    "cms145-cad-unconfirmed",
    M,
    "CAD diagnosis with verificationStatus unconfirmed: no qualifying CAD encounter",
    [
        patient(birth="1958-05-01"),
        confirmed("cad", "I25.10", system=ICD10, verification="unconfirmed"),
        encounter("e1", VISIT_1),
        encounter("e2", VISIT_2),
        ejection_fraction("ef", 30),
    ],
)
case(
    "cms145-age-17",
    M,
    "17 at the start of the period: not in the initial population",
    cad("2007-01-02", lvsd=True),
)
case(
    "cms145-lvsd-asthma-unconfirmed",
    M,
    "group 1 with active asthma whose verification is provisional: the CQL's list form checks only isActive,"
    " so an exception",
    [*cad(lvsd=True), confirmed("asthma", "J45.20", system=ICD10, verification="provisional")],
)
case(
    "cms145-mi-heart-rates-below-50",
    M,
    "group 2 with two consecutive heart rates below 50 at the visit: exception",
    [
        *cad(mi_onset="2023-05-01"),
        heart_rate("hr1", 47, "2025-03-04T09:05:00Z"),
        heart_rate("hr2", 45, "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms145-mi-prior-heart-rate-preliminary",
    M,
    "group 2: the earlier heart rate below 50 is preliminary; group 2's prior reading must be final (not"
    " an exception), group 1's need not (no LVSD here)",
    [
        *cad(mi_onset="2023-05-01"),
        {**heart_rate("hr1", 47, "2025-03-04T09:05:00Z"), "status": "preliminary"},
        heart_rate("hr2", 45, "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms145-lvsd-prior-heart-rate-preliminary",
    M,
    "group 1: the earlier heart rate below 50 is preliminary; group 1's prior reading may be any status",
    [
        *cad(lvsd=True),
        {**heart_rate("hr1", 47, "2025-03-04T09:05:00Z"), "status": "preliminary"},
        heart_rate("hr2", 45, "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms145-mi-allergy-diagnosis",
    M,
    "group 2 with a confirmed active beta-blocker allergy diagnosis: exception",
    [*cad(mi_onset="2023-05-01"), confirmed("allergy", "293962009", system=SNOMED)],
)
case(
    "cms145-lvsd-av-block-pacer-in-situ",
    M,
    "group 1 with atrioventricular block and a cardiac pacer in situ: no exception",
    [
        *cad(lvsd=True),
        condition("avb", "I44.1"),
        condition("pacer", "Z95.0"),
    ],
)
case(
    "cms145-mi-av-block",
    M,
    "group 2 with atrioventricular block (active, no verification status), no pacer: exception",
    [*cad(mi_onset="2023-05-01"), condition("avb", "I44.1")],
)
case(
    "cms145-mi-with-severe-lvsd",
    M,
    "MI in 2023 and LVSD (134401001) of severe severity: an LVSD finding, so group 1 and not group 2",
    [
        *cad(mi_onset="2023-05-01"),
        {
            **confirmed("lvsd", "134401001", system=SNOMED, onset="2024-05-01"),
            "severity": {"coding": [{"system": SNOMED, "code": "24484000"}]},
        },
    ],
)
case(
    "cms145-mi-allergy-intolerance-unconfirmed",
    M,
    "group 2 with an unconfirmed AllergyIntolerance to a beta-blocker ingredient class: CMS145 reads no"
    " verification status, so an exception",
    [*cad(mi_onset="2023-05-01"), allergy_intolerance("373254001", verification="unconfirmed")],
)
