"""CMS646 intravesical BCG for non-muscle-invasive bladder cancer: generated cases (see ``cases``).

The patient: a tumor staging procedure on 15 January 2025 (10:00), bladder cancer (C67.1) confirmed and active
from 20 January, a cT1 staging Observation part of that procedure, an office visit on 4 March, and BCG given
on 15 February."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, LOINC, RXNORM, SNOMED, encounter, patient, procedure
from .cases import case
from .heart import confirmed, medication

M = "CMS646"
STAGING = "254292007"  # SNOMED tumor staging
STAGED = "2025-01-15T10:00:00Z"
CT1, CTA, CTIS, CT2 = "1228889001", "1228883000", "1228884006", "1228892002"  # SNOMED AJCC cT qualifiers
BLADDER_CANCER = "C67.1"  # ICD-10-CM, in Bladder Cancer for Urology Care 2.16.840.1.113762.1.4.1151.45
BCG = "1653484"  # RxNorm BCG Tice strain, in BCG ... for Urology Care 2.16.840.1.113762.1.4.1151.52
TUBERCULOSIS = "A15.0"  # ICD-10-CM, in Active Tuberculosis for Urology Care 2.16.840.1.113762.1.4.1151.56
HIV = "B20"  # ICD-10-CM, in HIV 2.16.840.1.113883.3.464.1003.120.12.1003
MIXED_HISTOLOGY = "255111004"  # SNOMED, in Mixed histology urothelial ... 2.16.840.1.113762.1.4.1151.39
CYSTECTOMY = "51550"  # CPT, in Cystectomy for Urology Care 2.16.840.1.113762.1.4.1151.55
IMMUNOSUPPRESSANT = "1119400"  # RxNorm, in Immunosuppressive Drugs ... 2.16.840.1.113762.1.4.1151.32
CHEMOTHERAPY = "1001405"  # RxNorm, in Chemotherapy Agents for Advanced Cancer 2.16.840.1.113762.1.4.1151.60
RADIOTHERAPY = "169331000"  # SNOMED combined radiotherapy
OUT_OF_STOCK = "182856006"  # SNOMED, in Unavailability of BCG for urology care 2.16.840.1.113762.1.4.1151.44


def staging_obs(
    value: str = CT1,
    *,
    oid: str = "tnm",
    part_of: str | None = "stage",
    status: str = "final",
    value_system: str = SNOMED,
    when: str = STAGED,
) -> dict[str, Any]:
    """The staging result: any code (the CQL retrieves every Observation), a TNM value, part of a staging."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": "21905-5"}]},  # primary tumor, clinical
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueCodeableConcept": {"coding": [{"system": value_system, "code": value}]},
    }
    if part_of is not None:
        resource["partOf"] = [{"reference": f"Procedure/{part_of}"}]
    return resource


def bcg(when: str = "2025-02-15T10:00:00Z", *, rid: str = "bcg", status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": BCG}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
    }


def bcg_not_given(when: str = "2025-02-15T10:00:00Z") -> dict[str, Any]:
    resource = bcg(when, rid="nobcg", status="not-done")
    resource["statusReason"] = [{"coding": [{"system": SNOMED, "code": OUT_OF_STOCK}]}]
    return resource


def staged(
    *,
    staged_at: str = STAGED,
    onset: str = "2025-01-20",
    value: str = CT1,
    visit: str = "2025-03-04T09:00:00Z",
    klass: str = "AMB",
    observation: bool = True,
) -> list[dict[str, Any]]:
    """A staging procedure, bladder cancer diagnosed after it, a cT1 result of the staging and a visit."""
    resources = [
        patient(birth="1955-03-01", gender="male"),
        procedure("stage", STAGING, staged_at),
        confirmed("ca", BLADDER_CANCER, system=ICD10, onset=onset),
        encounter("e1", visit, klass=klass),
    ]
    if observation:
        resources.append(staging_obs(value, when=staged_at))
    return resources


case("cms646-bcg", M, "cT1 staged in January, BCG a month later: numerator", [*staged(), bcg()])
case("cms646-no-bcg", M, "cT1 staged, no BCG: denominator", staged())
case("cms646-cta", M, "cTa (the CQL does not read the grade): numerator", [*staged(value=CTA), bcg()])
case("cms646-ctis", M, "cTis: numerator", [*staged(value=CTIS), bcg()])
case(
    "cms646-d09",
    M,
    "carcinoma in situ of bladder (ICD-10-CM D09.0) as the value: numerator",
    [*staged(observation=False), staging_obs("D09.0", value_system=ICD10), bcg()],
)
case("cms646-ct2", M, "cT2 (muscle-invasive): not in the population", [*staged(value=CT2), bcg()])
case(
    "cms646-preliminary",
    M,
    "the staging result is preliminary: not in the population",
    [*staged(observation=False), staging_obs(status="preliminary"), bcg()],
)
case(
    "cms646-amended",
    M,
    "the staging result is amended: numerator",
    [*staged(observation=False), staging_obs(status="amended"), bcg()],
)
case(
    "cms646-no-part-of",
    M,
    "the cT1 result is part of no procedure",
    [*staged(observation=False), staging_obs(part_of=None), bcg()],
)
case(
    "cms646-part-of-other",
    M,
    "the cT1 result is part of a procedure that is not the staging",
    [*staged(observation=False), staging_obs(part_of="other"), bcg()],
)
case(
    "cms646-staging-window-start",
    M,
    "staged on 1 July 2024 (window start), BCG on 1 January 2025 (6 months after): numerator",
    [*staged(staged_at="2024-07-01T10:00:00Z", onset="2024-07-10"), bcg("2025-01-01T09:00:00Z")],
)
case(
    "cms646-staging-before-window",
    M,
    "staged on 30 June 2024, a day before the window: not in the population",
    [*staged(staged_at="2024-06-30T10:00:00Z", onset="2024-07-10"), bcg("2025-01-01T09:00:00Z")],
)
case(
    "cms646-staging-window-end",
    M,
    "staged on 30 June 2025 (window end), BCG in August: numerator",
    [*staged(staged_at="2025-06-30T10:00:00Z", onset="2025-07-01"), bcg("2025-08-01T09:00:00Z")],
)
case(
    "cms646-staging-after-window",
    M,
    "staged on 1 July 2025, a day after the window: not in the population",
    [*staged(staged_at="2025-07-01T10:00:00Z", onset="2025-07-02"), bcg("2025-08-01T09:00:00Z")],
)
case(
    "cms646-first-staging-earlier",
    M,
    "an earlier staging (May 2024, before the window) is the first: not in the population",
    [*staged(), procedure("stage0", STAGING, "2024-05-01T10:00:00Z"), bcg()],
)
case(
    "cms646-staging-after-diagnosis",
    M,
    "the staging follows the bladder cancer's onset (January 10): no first staging, not in the population",
    [*staged(onset="2025-01-10"), bcg()],
)
case(
    "cms646-staging-on-diagnosis-day",
    M,
    "bladder cancer's onset is the staging's day: numerator",
    [*staged(onset="2025-01-15"), bcg()],
)
case(
    "cms646-virtual-visit",
    M,
    "the only office visit is virtual: not in the population",
    [*staged(klass="VR"), bcg()],
)
case(
    "cms646-visit-before-period",
    M,
    "the only office visit is in December 2024: not in the population",
    [*staged(visit="2024-12-20T09:00:00Z"), bcg()],
)
case(
    "cms646-bcg-6-months",
    M,
    "BCG on 15 July 2025 at 09:00, 6 months after the staging: numerator",
    [*staged(), bcg("2025-07-15T09:00:00Z")],
)
case(
    "cms646-bcg-too-late",
    M,
    "BCG on 16 July 2025, 6 months and a day after: denominator",
    [*staged(), bcg("2025-07-16T09:00:00Z")],
)
case(
    "cms646-bcg-same-day-later",
    M,
    "BCG on the staging's day, two hours later: numerator",
    [*staged(), bcg("2025-01-15T12:00:00Z")],
)
case(
    "cms646-bcg-before-staging",
    M,
    "BCG the day before the staging: denominator",
    [*staged(), bcg("2025-01-14T12:00:00Z")],
)
case(
    "cms646-bcg-before-period",
    M,
    "staged in July 2024, BCG in December 2024 (before the period): denominator",
    [*staged(staged_at="2024-07-15T10:00:00Z", onset="2024-07-20"), bcg("2024-12-15T09:00:00Z")],
)
case(
    "cms646-bcg-in-progress",
    M,
    "BCG administration in progress: numerator",
    [*staged(), bcg(status="in-progress")],
)
case(
    "cms646-bcg-stopped",
    M,
    "the BCG administration was stopped: denominator",
    [*staged(), bcg(status="stopped")],
)
case(
    "cms646-bcg-unavailable",
    M,
    "BCG not given, out of stock: the CQL's exception is false, denominator",
    [*staged(), bcg_not_given()],
)
case(
    "cms646-tuberculosis",
    M,
    "active tuberculosis since 2024, ongoing after the staging: excluded",
    [*staged(), bcg(), confirmed("tb", TUBERCULOSIS, system=ICD10, onset="2024-11-01")],
)
case(
    "cms646-tuberculosis-ended",
    M,
    "tuberculosis that abated in December 2024: not excluded, numerator",
    [
        *staged(),
        bcg(),
        confirmed("tb", TUBERCULOSIS, system=ICD10, onset="2024-06-01", abatement="2024-12-01"),
    ],
)
case(
    "cms646-hiv",
    M,
    "HIV since 2015, before the staging: excluded",
    [*staged(), confirmed("hiv", HIV, system=ICD10, onset="2015-01-01")],
)
case(
    "cms646-mixed-histology-after",
    M,
    "mixed histology diagnosed after the staging (February): not excluded, numerator",
    [*staged(), bcg(), confirmed("mix", MIXED_HISTOLOGY, system=SNOMED, onset="2025-02-01")],
)
case(
    "cms646-mixed-histology-same-day",
    M,
    "mixed histology diagnosed on the staging's day: excluded",
    [*staged(), bcg(), confirmed("mix", MIXED_HISTOLOGY, system=SNOMED, onset="2025-01-15")],
)
case(
    "cms646-cystectomy",
    M,
    "a partial cystectomy in October 2024, 3 months before the staging: excluded",
    [*staged(), procedure("cyst", CYSTECTOMY, "2024-10-15T10:00:00Z", system=CPT)],
)
case(
    "cms646-cystectomy-too-early",
    M,
    "a partial cystectomy in June 2024, 7 months before the staging: numerator",
    [*staged(), bcg(), procedure("cyst", CYSTECTOMY, "2024-06-15T10:00:00Z", system=CPT)],
)
case(
    "cms646-radiotherapy",
    M,
    "combined radiotherapy a month before the staging: excluded",
    [*staged(), procedure("rt", RADIOTHERAPY, "2024-12-15T10:00:00Z")],
)
case(
    "cms646-radiotherapy-too-early",
    M,
    "combined radiotherapy 7 months before the staging: denominator",
    [*staged(), procedure("rt", RADIOTHERAPY, "2024-06-15T10:00:00Z")],
)
case(
    "cms646-chemotherapy",
    M,
    "a chemotherapy order whose dosage period starts 2 months before the staging: excluded",
    [
        *staged(),
        medication(
            "chemo",
            CHEMOTHERAPY,
            "2024-11-10T09:00:00Z",
            bounds=("2024-11-15T09:00:00Z", "2024-12-15T09:00:00Z"),
        ),
    ],
)
case(
    "cms646-immunosuppressant",
    M,
    "an immunosuppressant order whose dosage starts before the staging: excluded",
    [
        *staged(),
        medication("imm", IMMUNOSUPPRESSANT, "2024-03-01T09:00:00Z", bounds=("2024-03-01T09:00:00Z", None)),
    ],
)
case(
    "cms646-immunosuppressant-after",
    M,
    "an immunosuppressant started after the staging: numerator",
    [
        *staged(),
        bcg(),
        medication("imm", IMMUNOSUPPRESSANT, "2025-02-01T09:00:00Z", bounds=("2025-02-01T09:00:00Z", None)),
    ],
)
case(
    "cms646-cystectomy-6-months",
    M,
    "a cystectomy ending 6 months before the staging, an hour after its time of day: excluded",
    [*staged(), bcg(), procedure("cyst", CYSTECTOMY, "2024-07-15T11:00:00Z", system=CPT)],
)
case(
    "cms646-cystectomy-6-months-and-a-day",
    M,
    "a cystectomy ending 6 months and a day before the staging: numerator",
    [*staged(), bcg(), procedure("cyst", CYSTECTOMY, "2024-07-14T11:00:00Z", system=CPT)],
)
case(
    "cms646-cystectomy-after",
    M,
    "a cystectomy the day after the staging: numerator",
    [*staged(), bcg(), procedure("cyst", CYSTECTOMY, "2025-01-16T11:00:00Z", system=CPT)],
)
case(
    "cms646-radiotherapy-6-months",
    M,
    "combined radiotherapy starting 6 months before the staging: excluded",
    [*staged(), bcg(), procedure("rt", RADIOTHERAPY, "2024-07-15T11:00:00Z")],
)
case(
    "cms646-radiotherapy-not-done",
    M,
    "combined radiotherapy a month before the staging, not done: numerator",
    [*staged(), bcg(), procedure("rt", RADIOTHERAPY, "2024-12-15T10:00:00Z", status="not-done")],
)
case(
    "cms646-chemotherapy-7-months",
    M,
    "a chemotherapy order whose dosage period starts 7 months before the staging: numerator",
    [
        *staged(),
        bcg(),
        medication(
            "chemo",
            CHEMOTHERAPY,
            "2024-06-10T09:00:00Z",
            bounds=("2024-06-15T09:00:00Z", "2024-07-15T09:00:00Z"),
        ),
    ],
)
case(
    "cms646-chemotherapy-plan",
    M,
    "a chemotherapy plan (intent plan) 2 months before the staging: numerator",
    [
        *staged(),
        bcg(),
        medication(
            "chemo",
            CHEMOTHERAPY,
            "2024-11-10T09:00:00Z",
            bounds=("2024-11-15T09:00:00Z", "2024-12-15T09:00:00Z"),
            intent="plan",
        ),
    ],
)
case(
    "cms646-immunosuppressant-same-day",
    M,
    "an immunosuppressant whose dosage starts on the staging's day, after it: excluded (day precision)",
    [
        *staged(),
        bcg(),
        medication("imm", IMMUNOSUPPRESSANT, "2025-01-15T15:00:00Z", bounds=("2025-01-15T15:00:00Z", None)),
    ],
)
case(
    "cms646-immunosuppressant-no-dosage",
    M,
    "an immunosuppressant ordered before the staging with no dosage timing: numerator",
    [*staged(), bcg(), medication("imm", IMMUNOSUPPRESSANT, "2024-03-01T09:00:00Z")],
)
case(
    "cms646-tuberculosis-provisional",
    M,
    "provisional (unconfirmed) active tuberculosis: numerator",
    [
        *staged(),
        bcg(),
        confirmed("tb", TUBERCULOSIS, system=ICD10, onset="2024-11-01", verification="provisional"),
    ],
)
case(
    "cms646-hiv-day-after",
    M,
    "HIV diagnosed the day after the staging: numerator",
    [*staged(), bcg(), confirmed("hiv", HIV, system=ICD10, onset="2025-01-16")],
)
case(
    "cms646-cancer-after-period",
    M,
    "bladder cancer starting in 2026: no first staging, denominator",
    [*staged(onset="2026-01-05"), bcg()],
)
case(
    "cms646-bcg-after-period",
    M,
    "staged in late July 2025 (after the window, yet in the population), BCG in January 2026: denominator",
    [*staged(staged_at="2025-07-25T10:00:00Z", onset="2025-07-30"), bcg("2026-01-05T09:00:00Z")],
)
