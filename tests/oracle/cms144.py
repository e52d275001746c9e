"""CMS144 heart failure beta-blocker therapy for LVSD: generated cases (see ``cases``)."""

from __future__ import annotations

from ..conftest import ICD10, SNOMED, encounter, procedure
from .cases import case
from .heart import (
    allergy_intolerance,
    confirmed,
    ejection_fraction,
    heart_failure_patient,
    heart_rate,
    medication,
)

M = "CMS144"
CARVEDILOL = "200031"  # in Beta Blocker Therapy for LVSD


case(
    "cms144-ordered",
    M,
    "beta-blocker ordered on the day of a heart failure visit with EF 35%: numerator",
    [*heart_failure_patient(), medication("bb", CARVEDILOL)],
)
case("cms144-not-treated", M, "no beta-blocker: denominator only", heart_failure_patient())
case(
    "cms144-ordered-day-after",
    M,
    "beta-blocker ordered the day after the visit (no dosage period): not in the numerator",
    [*heart_failure_patient(), medication("bb", CARVEDILOL, "2025-03-05T09:00:00Z")],
)
case(
    "cms144-taking",
    M,
    "beta-blocker ordered in 2024 whose dosage period runs through the visits: numerator (currently taking)",
    [
        *heart_failure_patient(),
        medication("bb", CARVEDILOL, "2024-06-01T09:00:00Z", bounds=("2024-06-01", "2025-12-31")),
    ],
)
case(
    "cms144-taking-open-end",
    M,
    "beta-blocker dosage period with a start and no end: it runs past the visit (numerator)",
    [
        *heart_failure_patient(visits=2),
        medication("bb", CARVEDILOL, "2024-06-01T09:00:00Z", bounds=("2024-06-01", None)),
    ],
)
case(
    "cms144-taking-ends-on-visit-day",
    M,
    "dosage period ending on the day of the only heart failure visit (the other visit is a patient-provider"
    " interaction): overlaps it but does not end after it",
    [
        *heart_failure_patient(visits=1),
        encounter("ppi", "2025-05-02T09:00:00Z", cpt="185316007", system=SNOMED),
        medication("bb", CARVEDILOL, "2024-06-01T09:00:00Z", bounds=("2024-06-01", "2025-03-04")),
    ],
)
case(
    "cms144-order-cancelled",
    M,
    "beta-blocker order with status cancelled on the visit day: not ordered",
    [*heart_failure_patient(), medication("bb", CARVEDILOL, status="cancelled")],
)
case(
    "cms144-taking-ends-day-after-visit",
    M,
    "dosage period ending the day after the only heart failure visit: ends after it (numerator)",
    [
        *heart_failure_patient(visits=1),
        encounter("ppi", "2025-05-02T09:00:00Z", cpt="185316007", system=SNOMED),
        medication("bb", CARVEDILOL, "2024-06-01T09:00:00Z", bounds=("2024-06-01", "2025-03-05")),
    ],
)
case(
    "cms144-one-visit",
    M,
    "only one qualifying outpatient visit: not in the initial population",
    heart_failure_patient(visits=1),
)
case(
    "cms144-age-18",
    M,
    "18 on the first day of the period: initial population",
    heart_failure_patient("2007-01-01"),
)
case(
    "cms144-age-17",
    M,
    "18 on 2 January: 17 at the start of the period, not in the initial population",
    heart_failure_patient("2007-01-02"),
)
case(
    "cms144-hf-provisional",
    M,
    "heart failure with verificationStatus provisional: not a confirmed diagnosis, no heart failure visit",
    heart_failure_patient(hf_verification="provisional"),
)
case(
    "cms144-ef-40",
    M,
    "ejection fraction exactly 40%: moderate or severe LVSD (denominator)",
    heart_failure_patient(ef=40),
)
case(
    "cms144-ef-41", M, "ejection fraction 41%: no LVSD, initial population only", heart_failure_patient(ef=41)
)
case(
    "cms144-ef-after-visits",
    M,
    "ejection fraction 30% measured after both visits: no history of LVSD at them",
    [*heart_failure_patient(ef=None), ejection_fraction("ef", 30, "2025-07-01T10:00:00Z")],
)
case(
    "cms144-lvsd-diagnosis",
    M,
    "no ejection fraction, a confirmed active moderate-or-severe LVSD diagnosis: denominator",
    [*heart_failure_patient(ef=None), confirmed("lvsd", "981000124106", system=SNOMED, onset="2024-05-01")],
)
case(
    "cms144-heart-transplant",
    M,
    "heart transplant in 2021: denominator exclusion",
    [*heart_failure_patient(), procedure("tx", "32413006", "2021-04-01T10:00:00Z")],
)
case(
    "cms144-lvad-complication-recorded",
    M,
    "LVAD complication without onset, recorded in January: excluded (recordedDate is the diagnosis start)",
    [
        *heart_failure_patient(),
        {**confirmed("lvadc", "764680009", system=SNOMED, onset=None), "recordedDate": "2025-01-15"},
    ],
)
case(
    "cms144-heart-rates-below-50",
    M,
    "two consecutive heart rates below 50 during the visit: denominator exception",
    [
        *heart_failure_patient(),
        heart_rate("hr1", 48, "2025-03-04T09:05:00Z"),
        heart_rate("hr2", 46, "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms144-heart-rate-60-then-45",
    M,
    "a heart rate of 60 then one of 45 during the visit: not two consecutive below 50",
    [
        *heart_failure_patient(),
        heart_rate("hr1", 60, "2025-03-04T09:05:00Z"),
        heart_rate("hr2", 45, "2025-03-04T09:15:00Z"),
    ],
)
case(
    "cms144-asthma",
    M,
    "confirmed active asthma overlapping the visits: denominator exception",
    [*heart_failure_patient(), confirmed("asthma", "J45.20", system=ICD10)],
)
case(
    "cms144-bradycardia-resolved",
    M,
    "bradycardia that abated in 2024: does not overlap the visits, no exception",
    [
        *heart_failure_patient(),
        confirmed("brady", "R00.1", system=ICD10, status="resolved", abatement="2024-12-01"),
    ],
)
case(
    "cms144-allergy-diagnosis",
    M,
    "allergy to beta-blockers (diagnosis, active): denominator exception",
    [*heart_failure_patient(), confirmed("allergy", "293962009", system=SNOMED)],
)
case(
    "cms144-av-block",
    M,
    "atrioventricular block, no pacer: denominator exception",
    [*heart_failure_patient(), confirmed("avb", "I44.1", system=ICD10)],
)
case(
    "cms144-av-block-with-pacer",
    M,
    "atrioventricular block with a cardiac pacer implanted in 2023: no exception",
    [
        *heart_failure_patient(),
        confirmed("avb", "I44.1", system=ICD10),
        procedure("pacer", "33206", "2023-02-01T10:00:00Z", system="http://www.ama-assn.org/go/cpt"),
    ],
)
case(
    "cms144-not-ordered-medical-reason",
    M,
    "beta-blocker not ordered (doNotPerform) with a medical reason: the CQL has this exception commented out",
    [
        *heart_failure_patient(),
        medication("bb", CARVEDILOL, do_not_perform=True, reason="183966005", status="completed"),
    ],
)
case(
    "cms144-home-visit-order",
    M,
    "beta-blocker ordered at a home healthcare visit (99347), a heart failure visit too: numerator",
    [
        *heart_failure_patient(visits=1),
        encounter("home", "2025-09-01T09:00:00Z", cpt="99347"),
        medication("bb", CARVEDILOL, "2025-09-01T09:30:00Z"),
    ],
)
case(
    "cms144-lvsd-moderate-severity",
    M,
    "no ejection fraction; LVSD (134401001) with severity moderate, confirmed active: denominator",
    [
        *heart_failure_patient(ef=None),
        {
            **confirmed("lvsd", "134401001", system=SNOMED, onset="2024-05-01"),
            "severity": {"coding": [{"system": SNOMED, "code": "6736007"}]},
        },
    ],
)
case(
    "cms144-lvsd-mild-severity",
    M,
    "no ejection fraction; LVSD (134401001) with severity mild: no moderate or severe LVSD",
    [
        *heart_failure_patient(ef=None),
        {
            **confirmed("lvsd", "134401001", system=SNOMED, onset="2024-05-01"),
            "severity": {"coding": [{"system": SNOMED, "code": "255604002"}]},
        },
    ],
)
case(
    "cms144-allergy-intolerance",
    M,
    "AllergyIntolerance to the beta-blocker class (373254001), active, confirmed, no last occurrence:"
    " denominator exception",
    [*heart_failure_patient(), allergy_intolerance("373254001")],
)
case(
    "cms144-allergy-intolerance-unconfirmed",
    M,
    "the same AllergyIntolerance, verificationStatus unconfirmed: no exception",
    [*heart_failure_patient(), allergy_intolerance("373254001", verification="unconfirmed")],
)
