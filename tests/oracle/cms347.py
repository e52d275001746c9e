"""CMS347 statin therapy for the prevention and treatment of cardiovascular disease (four groups): generated
cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import (
    CPT,
    RXNORM,
    SNOMED,
    condition,
    encounter,
    patient,
    procedure,
    quantity_obs,
    request,
)
from .cases import case

M = "CMS347"
HL7 = "http://terminology.hl7.org/CodeSystem"
ATORVASTATIN_20 = "617310"  # Moderate Intensity Statin Therapy
ATORVASTATIN = "83367"  # the ingredient: Statin Allergen
VISIT = "2025-03-04T09:00:00Z"
VISIT_END = "2025-03-04T09:30:00Z"
ADULT = "1965-05-01"  # 59 at the start of the period


def seen(birth: str = ADULT) -> list[dict[str, Any]]:
    """A patient with a finished office visit on 4 March 2025 (09:00-09:30)."""
    return [patient(birth=birth), encounter("e1", VISIT, end=VISIT_END)]


def problem(cid: str, code: str, *, category: str = "problem-list-item", **kw: Any) -> dict[str, Any]:
    """An active Condition (ICD-10-CM) on the problem list (or the given category), onset 2020 by default."""
    return condition(cid, code, category=category, **kw)


def ascvd(birth: str = ADULT) -> list[dict[str, Any]]:
    """Atherosclerotic heart disease (I25.10) on the problem list since 2020, seen in the period: group 1."""
    return [*seen(birth), problem("cad", "I25.10")]


def statin(
    rid: str = "statin",
    authored: str = "2025-03-04T09:20:00Z",
    *,
    bounds: list[tuple[str, str | None]] | None = None,
    code: str = ATORVASTATIN_20,
    **kw: Any,
) -> dict[str, Any]:
    """A statin MedicationRequest (RxNorm); ``bounds``: one dosage per period (end None: open)."""
    resource = request("MedicationRequest", rid, code, authored, system=RXNORM, **kw)
    if bounds is not None:
        resource["dosageInstruction"] = [
            {"timing": {"repeat": {"boundsPeriod": {"start": s} if e is None else {"start": s, "end": e}}}}
            for s, e in bounds
        ]
    return resource


def ldl(value: float, when: str = "2024-06-01T08:00:00Z", **kw: Any) -> dict[str, Any]:
    return quantity_obs("ldl", "2089-1", value, "mg/dL", when, eid=None, **kw)


def cvd_risk(value: float, when: str = "2025-02-01T08:00:00Z") -> dict[str, Any]:
    """A 10-year cardiovascular risk (ACC/AHA pooled cohort, 79423-0) in %."""
    return quantity_obs("risk", "79423-0", value, "%", when, eid=None, category=None)


def statin_allergy(status: str = "active", onset: str = "2025-02-01") -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": "allergy",
        "patient": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": RXNORM, "code": ATORVASTATIN}]},
        "clinicalStatus": {"coding": [{"system": f"{HL7}/allergyintolerance-clinical", "code": status}]},
        "onsetDateTime": onset,
    }


# ---------------------------------------------------------------- group 1: clinical ASCVD
case(
    "cms347-ascvd-statin-ordered",
    M,
    "ASCVD on the problem list, a statin ordered at the visit: group 1 numerator",
    [*ascvd(), statin()],
)
case("cms347-ascvd-not-treated", M, "ASCVD, no statin: group 1 denominator only", ascvd())
case(
    "cms347-ascvd-encounter-diagnosis",
    M,
    "ASCVD only as an encounter diagnosis (not problem list or health concern): no initial population",
    [*seen(), problem("cad", "I25.10", category="encounter-diagnosis")],
)
case(
    "cms347-tia-health-concern",
    M,
    "a TIA recorded as a health concern: group 1",
    [*seen(), problem("tia", "G45.9", category="health-concern", onset="2022-05-01")],
)
case(
    "cms347-cabg-procedure",
    M,
    "a completed CABG in 2019, no ASCVD diagnosis: group 1",
    [*seen(), procedure("cabg", "33510", "2019-04-01T10:00:00Z", system=CPT)],
)
case(
    "cms347-ascvd-onset-after-period",
    M,
    "ASCVD starting on 1 January 2026: not before the end of the period, no initial population",
    [*seen(), problem("cad", "I25.10", onset="2026-01-01")],
)
case(
    "cms347-no-visit",
    M,
    "ASCVD but the only visit is unfinished: no initial population",
    [
        patient(birth=ADULT),
        encounter("e1", VISIT, end=VISIT_END, status="in-progress"),
        problem("cad", "I25.10"),
    ],
)
case(
    "cms347-subsequent-nstemi-and-ldl",
    M,
    "a subsequent NSTEMI (I22.2) and LDL 200: group 1, and group 2 too (its ASCVD test leaves I22.2 out)",
    [*seen(), problem("nstemi", "I22.2", onset="2024-02-01"), ldl(200)],
)

# ------------------------------------------------------- group 2: LDL >= 190 or familial hypercholesterolemia
case(
    "cms347-ldl-190-appended",
    M,
    "LDL exactly 190 mg/dL (status appended) in 2024, 30 years old: group 2",
    [*seen("1994-06-01"), ldl(190, status="appended")],
)
case("cms347-ldl-189", M, "LDL 189 mg/dL: no initial population", [*seen("1994-06-01"), ldl(189)])
case(
    "cms347-ldl-190-preliminary",
    M,
    "LDL 195 mg/dL, preliminary: no initial population",
    [*seen("1994-06-01"), ldl(195, status="preliminary")],
)
case(
    "cms347-fh-age-20",
    M,
    "familial hypercholesterolemia, 20 on the first day of the period: group 2",
    [*seen("2005-01-01"), problem("fh", "E78.01")],
)
case(
    "cms347-fh-age-19",
    M,
    "familial hypercholesterolemia, 19 at the start of the period (20 on 2 January): no initial population",
    [*seen("2005-01-02"), problem("fh", "E78.01")],
)
case(
    "cms347-fh-age-75",
    M,
    "familial hypercholesterolemia, 75 at the start of the period: group 2",
    [*seen("1949-01-02"), problem("fh", "E78.01")],
)
case(
    "cms347-fh-age-76",
    M,
    "familial hypercholesterolemia, 76 on the first day of the period: no initial population",
    [*seen("1949-01-01"), problem("fh", "E78.01")],
)

# ---------------------------------------------------------------- group 3: diabetes 40-75
case(
    "cms347-diabetes-40",
    M,
    "diabetes on the problem list, 40 on the first day of the period: group 3",
    [*seen("1985-01-01"), problem("dm", "E11.9")],
)
case(
    "cms347-diabetes-39",
    M,
    "diabetes, 39 at the start of the period: no initial population",
    [*seen("1985-01-02"), problem("dm", "E11.9")],
)
case(
    "cms347-diabetes-and-ldl-190",
    M,
    "diabetes and LDL 195 mg/dL, 50 years old: group 2, not group 3",
    [*seen("1975-03-01"), problem("dm", "E11.9"), ldl(195)],
)

# ---------------------------------------------------------------- group 4: 10-year CVD risk >= 20%
case(
    "cms347-risk-20",
    M,
    "10-year CVD risk 20% in the period, 50 years old: group 4",
    [*seen("1975-03-01"), cvd_risk(20)],
)
case(
    "cms347-risk-19-9",
    M,
    "10-year CVD risk 19.9%: no initial population",
    [*seen("1975-03-01"), cvd_risk(19.9)],
)
case(
    "cms347-risk-before-period",
    M,
    "10-year CVD risk 25% in December 2024: not during the period, no initial population",
    [*seen("1975-03-01"), cvd_risk(25, "2024-12-15T08:00:00Z")],
)
case(
    "cms347-risk-and-diabetes",
    M,
    "10-year CVD risk 25% and diabetes: group 3, not group 4",
    [*seen("1975-03-01"), cvd_risk(25), problem("dm", "E11.9")],
)

# ---------------------------------------------------------------- exclusions and exceptions (group 1)
case(
    "cms347-rhabdomyolysis",
    M,
    "rhabdomyolysis on the problem list in the period: denominator exclusion",
    [*ascvd(), problem("rhabdo", "M62.82", onset="2025-02-01")],
)
case(
    "cms347-breastfeeding-resolved-2024",
    M,
    "breastfeeding complication abated in 2024: not overlapping the period, no exclusion",
    [*ascvd(), problem("bf", "O91.03", onset="2024-01-01", status="resolved", abatement="2024-06-01")],
)
case(
    "cms347-allergy-active",
    M,
    "active atorvastatin allergy with onset in the period: denominator exception",
    [*ascvd(), statin_allergy()],
)
case(
    "cms347-allergy-inactive",
    M,
    "inactive atorvastatin allergy with onset in the period: no exception",
    [*ascvd(), statin_allergy("inactive")],
)
case(
    "cms347-allergy-onset-2023",
    M,
    "active atorvastatin allergy with onset in 2023 (onset alone does not overlap the period): no exception",
    [*ascvd(), statin_allergy(onset="2023-05-01")],
)
case(
    "cms347-allergy-and-statin",
    M,
    "active statin allergy and a statin ordered: numerator (exceptions count only outside it)",
    [*ascvd(), statin_allergy(), statin()],
)
case(
    "cms347-adverse-event",
    M,
    "adverse event to atorvastatin recorded in the period: denominator exception",
    [
        *ascvd(),
        {
            "resourceType": "AdverseEvent",
            "id": "ae",
            "actuality": "actual",
            "event": {"coding": [{"system": RXNORM, "code": ATORVASTATIN}]},
            "subject": {"reference": "Patient/p1"},
            "recordedDate": "2025-04-01T10:00:00Z",
        },
    ],
)
case(
    "cms347-hospice",
    M,
    "hospice encounter in the period: denominator exception",
    [*ascvd(), encounter("hosp", "2025-05-01T09:00:00Z", system=SNOMED, cpt="183919006")],
)
case(
    "cms347-palliative",
    M,
    "palliative care encounter in the period: denominator exception",
    [*ascvd(), encounter("pal", "2025-05-01T09:00:00Z", system=SNOMED, cpt="305686008")],
)
case(
    "cms347-liver-disease",
    M,
    "hepatitis C (Liver Disease) on the problem list overlapping the period: denominator exception",
    [*ascvd(), problem("liver", "B17.10", onset="2024-11-01")],
)
case(
    "cms347-muscle-symptoms",
    M,
    "statin-associated muscle symptoms (drug-induced myopathy) as a health concern: denominator exception",
    [*ascvd(), problem("sams", "G72.0", category="health-concern", onset="2025-01-20")],
)
case(
    "cms347-esrd",
    M,
    "end-stage renal disease on the problem list: denominator exception",
    [*ascvd(), problem("esrd", "N18.6", onset="2023-01-01")],
)
case(
    "cms347-not-ordered-medical-reason",
    M,
    "statin not ordered for a medical reason during the visit: denominator exception",
    [
        *ascvd(),
        statin("nostatin", status="completed", do_not_perform=True, reason="183966005"),
    ],
)
case(
    "cms347-not-ordered-after-visit",
    M,
    "statin not ordered for a medical reason the day after the visit: no exception",
    [
        *ascvd(),
        statin(
            "nostatin", "2025-03-05T09:20:00Z", status="completed", do_not_perform=True, reason="183966005"
        ),
    ],
)

# ---------------------------------------------------------------- numerator (group 1)
case(
    "cms347-dosage-overlaps-period",
    M,
    "statin ordered in June 2024 with a dosage period to June 2025: numerator",
    [*ascvd(), statin(authored="2024-06-01T09:00:00Z", bounds=[("2024-06-01", "2025-06-01")])],
)
case(
    "cms347-second-dosage-overlaps",
    M,
    "statin ordered in 2023: its first dosage period ends in 2023, its second (open) starts December 2024:"
    " numerator (any dosage)",
    [
        *ascvd(),
        statin(authored="2023-01-01T09:00:00Z", bounds=[("2023-01-01", "2023-12-31"), ("2024-12-01", None)]),
    ],
)
case(
    "cms347-dosage-before-period",
    M,
    "statin ordered in 2023 with a dosage period ending 31 December 2024: not in the numerator",
    [*ascvd(), statin(authored="2023-01-01T09:00:00Z", bounds=[("2023-01-01", "2024-12-31")])],
)
case(
    "cms347-statin-draft",
    M,
    "statin order in draft: not in the numerator",
    [*ascvd(), statin(status="draft")],
)
case(
    "cms347-statin-plan",
    M,
    "statin with intent plan: not in the numerator",
    [*ascvd(), statin(intent="plan")],
)

# ---------------------------------------------------------------- diagnoses without an onset
case(
    "cms347-ascvd-no-onset",
    M,
    "active ASCVD on the problem list without an onset (its prevalence has no start)",
    [*seen(), problem("cad", "I25.10", onset=None)],
)
case(
    "cms347-diabetes-no-onset",
    M,
    "active diabetes on the problem list without an onset, 50 years old",
    [*seen("1975-03-01"), problem("dm", "E11.9", onset=None)],
)
