"""CMS131 diabetes eye exam: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, coded_obs, condition, encounter, patient
from .cases import case

M = "CMS131"


def diabetic(
    birth: str = "1965-05-01", *, diabetes: dict[str, Any] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """A patient with type 2 diabetes and an office visit in the period."""
    return [
        patient(birth=birth),
        diabetes or condition("dm", "E11.9", system=ICD10, onset="2015-01-01"),
        encounter(**kw),
    ]


def exam(when: str = "2025-03-04T09:30:00Z", **kw: Any) -> dict[str, Any]:
    """A dilated retinal exam (SNOMED 308110009), category exam."""
    kw.setdefault("category", "exam")
    return coded_obs("eye", "308110009", when, system=SNOMED, **kw)


def retinopathy(onset: str = "2020-01-01") -> dict[str, Any]:
    return condition("dr", "E11.319", system=ICD10, onset=onset)


case(
    "cms131-exam-in-period", M, "retinal exam in the period, no retinopathy: numerator", [*diabetic(), exam()]
)
case(
    "cms131-exam-year-prior",
    M,
    "retinal exam on 1 Jan of the year before, no retinopathy: numerator",
    [*diabetic(), exam("2024-01-01T09:30:00Z")],
)
case(
    "cms131-exam-too-old",
    M,
    "retinal exam on 31 Dec two years before: not met",
    [*diabetic(), exam("2023-12-31T09:30:00Z")],
)
case(
    "cms131-retinopathy-exam-prior-year",
    M,
    "retinopathy and an exam only in the year before: not met (needs one in the period)",
    [*diabetic(), retinopathy(), exam("2024-06-01T09:30:00Z")],
)
case(
    "cms131-retinopathy-exam-in-period",
    M,
    "retinopathy and an exam in the period: numerator",
    [*diabetic(), retinopathy(), exam()],
)
case(
    "cms131-retinopathy-resolved",
    M,
    "retinopathy resolved before the period, exam the year before: numerator (no retinopathy overlapping)",
    [
        *diabetic(),
        condition(
            "dr", "E11.319", system=ICD10, onset="2020-01-01", status="resolved", abatement="2024-03-01"
        ),
        exam("2024-06-01T09:30:00Z"),
    ],
)
case(
    "cms131-exam-no-category",
    M,
    "retinal exam without the exam category: not a performed physical exam",
    [*diabetic(), exam(category=None)],
)
case(
    "cms131-exam-preliminary",
    M,
    "preliminary retinal exam: not counted",
    [*diabetic(), exam(status="preliminary")],
)
case("cms131-no-exam", M, "diabetes, no eye exam: denominator only", diabetic())
case(
    "cms131-no-diabetes",
    M,
    "an office visit but no diabetes: not in the initial population",
    [patient(birth="1965-05-01"), encounter(), exam()],
)
case(
    "cms131-diabetes-ended-2024",
    M,
    "diabetes resolved in 2024: not in the initial population",
    diabetic(
        diabetes=condition(
            "dm", "E11.9", system=ICD10, onset="2015-01-01", status="resolved", abatement="2024-06-01"
        )
    ),
)
case(
    "cms131-diabetes-inactive-no-abatement",
    M,
    "diabetes inactive without an abatement date: its prevalence has an unknown end",
    diabetic(diabetes=condition("dm", "E11.9", system=ICD10, onset="2015-01-01", status="inactive")),
)
case("cms131-age-18", M, "18 at the end of the period: initial population", diabetic("2007-12-31"))
case("cms131-age-17", M, "17 at the end of the period: not in the initial population", diabetic("2008-01-01"))
case("cms131-age-75", M, "75 at the end of the period: initial population", diabetic("1950-01-01"))
case("cms131-age-76", M, "76 at the end of the period: not in the initial population", diabetic("1949-12-31"))
case(
    "cms131-ophthalmology-visit",
    M,
    "only an ophthalmological services visit (92004): initial population",
    diabetic(cpt="92004", system=CPT),
)
case(
    "cms131-virtual-visit-only",
    M,
    "only a virtual encounter (98970), not one of this measure's encounters: not in the initial population",
    diabetic(cpt="98970", system=CPT),
)
case(
    "cms131-hospice",
    M,
    "a hospice encounter in the period: denominator exclusion",
    [*diabetic(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006"), exam()],
)
case(
    "cms131-frail-70-dementia-medication",
    M,
    "70 with frailty and an active dementia medication: denominator exclusion",
    [
        *diabetic("1955-02-01"),
        condition("frail", "L89.000", system=ICD10, onset="2025-02-01"),
        {
            "resourceType": "MedicationRequest",
            "id": "dem",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "997223"}]
            },
            "subject": {"reference": "Patient/p1"},
            "authoredOn": "2025-02-01T09:00:00Z",
            "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"}},
        },
    ],
)
