"""CMS135 heart failure ACE inhibitor, ARB or ARNI therapy for LVSD: generated cases (see ``cases``)."""

from __future__ import annotations

from ..conftest import ICD10, SNOMED, condition, encounter, procedure
from .cases import case
from .heart import allergy_intolerance, confirmed, heart_failure_patient, medication

M = "CMS135"
LISINOPRIL = "197884"  # in ACE Inhibitor or ARB or ARNI


case(
    "cms135-ordered",
    M,
    "lisinopril ordered on the day of a heart failure visit with EF 35%: numerator",
    [*heart_failure_patient(), medication("ace", LISINOPRIL)],
)
case("cms135-not-treated", M, "no ACE inhibitor, ARB or ARNI: denominator only", heart_failure_patient())
case(
    "cms135-ordered-intent-plan",
    M,
    "lisinopril with intent plan on the visit day: not an order",
    [*heart_failure_patient(), medication("ace", LISINOPRIL, intent="plan")],
)
case(
    "cms135-taking",
    M,
    "lisinopril ordered in 2024, dosage period through 2025: numerator (currently taking)",
    [
        *heart_failure_patient(),
        medication("ace", LISINOPRIL, "2024-06-01T09:00:00Z", bounds=("2024-06-01", "2025-12-31")),
    ],
)
case(
    "cms135-taking-ended-2024",
    M,
    "lisinopril dosage period ended in 2024: not currently taking",
    [
        *heart_failure_patient(),
        medication("ace", LISINOPRIL, "2024-01-01T09:00:00Z", bounds=("2024-01-01", "2024-12-31")),
    ],
)
case(
    "cms135-two-dosage-periods",
    M,
    "two dosage instructions, 2024-01..2024-03 and 2025-01..2025-12: the first period (collapsed) decides,"
    " it ended before the visits",
    [
        *heart_failure_patient(),
        {
            **medication("ace", LISINOPRIL, "2024-01-01T09:00:00Z"),
            "dosageInstruction": [
                {"timing": {"repeat": {"boundsPeriod": {"start": "2025-01-01", "end": "2025-12-31"}}}},
                {"timing": {"repeat": {"boundsPeriod": {"start": "2024-01-01", "end": "2024-03-31"}}}},
            ],
        },
    ],
)
case(
    "cms135-lvsd-unconfirmed",
    M,
    "no ejection fraction; LVSD diagnosis unconfirmed: initial population only",
    [
        *heart_failure_patient(ef=None),
        confirmed("lvsd", "981000124106", system=SNOMED, verification="unconfirmed", onset="2024-05-01"),
    ],
)
case(
    "cms135-lvad",
    M,
    "LVAD placed in 2022: denominator exclusion",
    [*heart_failure_patient(), procedure("lvad", "232967006", "2022-05-01T10:00:00Z")],
)
case(
    "cms135-lvad-after-visits",
    M,
    "LVAD placed in November, after both heart failure visits: not excluded",
    [*heart_failure_patient(), procedure("lvad", "232967006", "2025-11-01T10:00:00Z")],
)
case(
    "cms135-transplant-complication",
    M,
    "confirmed heart transplant complication since 2023: denominator exclusion",
    [*heart_failure_patient(), confirmed("txc", "I25.750", system=ICD10, onset="2023-01-01")],
)
case(
    "cms135-allergy-diagnosis",
    M,
    "intolerance to ACE inhibitors (diagnosis, active): denominator exception",
    [*heart_failure_patient(), confirmed("intol", "293500009", system=SNOMED)],
)
case(
    "cms135-allergy-diagnosis-ended",
    M,
    "ACE inhibitor intolerance that abated on the day of the only heart failure visit: does not outlast it",
    [
        *heart_failure_patient(visits=1),
        encounter("ppi", "2025-05-02T09:00:00Z", cpt="185316007", system=SNOMED),
        confirmed("intol", "293500009", system=SNOMED, status="resolved", abatement="2025-03-04"),
    ],
)
case(
    "cms135-pregnancy",
    M,
    "pregnancy starting 3 months before the first visit (no verification status): denominator exception",
    [*heart_failure_patient(birth="1990-05-01"), condition("preg", "Z33.1", onset="2024-12-01T00:00:00Z")],
)
case(
    "cms135-pregnancy-10-months-before",
    M,
    "pregnancy starting 10 months before the first and 13 months before the second visit: no exception",
    [*heart_failure_patient(birth="1990-05-01"), condition("preg", "Z33.1", onset="2024-05-04T00:00:00Z")],
)
case(
    "cms135-renal-failure-acei",
    M,
    "acute renal failure caused by an ACE inhibitor, confirmed and active: denominator exception",
    [*heart_failure_patient(), confirmed("arf", "422593004", system=SNOMED, onset="2025-01-10")],
)
case(
    "cms135-not-ordered-patient-reason",
    M,
    "ACE inhibitor not ordered (doNotPerform, completed) for a patient reason: the CQL has this exception"
    " commented out",
    [
        *heart_failure_patient(),
        medication("ace", LISINOPRIL, do_not_perform=True, reason="105480006", status="completed"),
    ],
)
case(
    "cms135-age-80-nursing-facility",
    M,
    "80 years old, seen at a nursing facility (99309) and the office, ARB ordered at the nursing facility",
    [
        *heart_failure_patient(birth="1945-02-01", visits=1),
        encounter("nf", "2025-08-01T09:00:00Z", cpt="99309"),
        medication("arb", "979480", "2025-08-01T09:30:00Z"),
    ],
)
case(
    "cms135-allergy-intolerance-ended",
    M,
    "AllergyIntolerance to ACE inhibitors whose last occurrence was in 2024: does not last past the visits",
    [*heart_failure_patient(), allergy_intolerance("372733002", last="2024-06-01")],
)
case(
    "cms135-allergy-intolerance",
    M,
    "AllergyIntolerance to ARBs (372913009), active and confirmed: denominator exception",
    [*heart_failure_patient(), allergy_intolerance("372913009")],
)
