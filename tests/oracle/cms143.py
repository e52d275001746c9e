"""CMS143 POAG optic nerve evaluation: generated cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, coded_obs, condition, encounter, not_done_obs, patient
from .cases import case

M = "CMS143"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def glaucoma(verification: str | None = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("onset", "2020-01-01")
    made = condition("poag", "H40.1131", system=ICD10, **kw)
    if verification is not None:
        made["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    return made


def visit(**kw: Any) -> dict[str, Any]:
    """An eye visit on 4 March, 09:00-09:30."""
    return encounter("e1", "2025-03-04T09:00:00Z", end="2025-03-04T09:30:00Z", **kw)


def patient_with(
    birth: str = "1955-05-01", *, poag: dict[str, Any] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    return [patient(birth=birth), poag or glaucoma(), visit(**kw)]


def cup_to_disc(when: str = "2025-03-04T09:10:00Z", **kw: Any) -> dict[str, Any]:
    kw.setdefault("value", 0.4)
    return coded_obs("cd", "71484-0", when, category="exam", **kw)


def optic_disc(when: str = "2025-03-04T09:12:00Z", **kw: Any) -> dict[str, Any]:
    kw.setdefault("value_code", "17621005")  # normal
    return coded_obs("od", "71486-5", when, category="exam", **kw)


case(
    "cms143-evaluated",
    M,
    "cup to disc ratio and optic disc exam during the visit: numerator",
    [*patient_with(), cup_to_disc(), optic_disc()],
)
case("cms143-cup-only", M, "only the cup to disc ratio: not met", [*patient_with(), cup_to_disc()])
case("cms143-disc-only", M, "only the optic disc exam: not met", [*patient_with(), optic_disc()])
case(
    "cms143-cup-no-value",
    M,
    "cup to disc ratio without a result: not met",
    [*patient_with(), cup_to_disc(value=None), optic_disc()],
)
case(
    "cms143-disc-after-visit",
    M,
    "optic disc exam at 09:40, after the visit ended at 09:30: not met",
    [*patient_with(), cup_to_disc(), optic_disc("2025-03-04T09:40:00Z")],
)
case(
    "cms143-preliminary",
    M,
    "preliminary cup to disc ratio: not met",
    [*patient_with(), cup_to_disc(status="preliminary"), optic_disc()],
)
case(
    "cms143-medical-reason",
    M,
    "cup to disc ratio not done for a medical reason during the visit: denominator exception",
    [*patient_with(), not_done_obs("nd", "71484-0", "183932001", "2025-03-04T09:10:00Z"), optic_disc()],
)
case(
    "cms143-virtual",
    M,
    "the only visit is virtual: not in the initial population",
    [*patient_with(klass="VR"), cup_to_disc(), optic_disc()],
)
case(
    "cms143-visit-in-progress",
    M,
    "the only visit is in progress, not finished: not in the initial population",
    patient_with(status="in-progress"),
)
case(
    "cms143-refuted",
    M,
    "glaucoma refuted: not in the initial population",
    patient_with(poag=glaucoma("refuted")),
)
case(
    "cms143-resolved",
    M,
    "glaucoma resolved in 2024: not in the initial population",
    patient_with(poag=glaucoma(status="resolved", abatement="2024-06-01")),
)
case("cms143-age-18", M, "18 at the start of the period: initial population", patient_with("2007-01-01"))
case(
    "cms143-age-17",
    M,
    "17 at the start of the period: not in the initial population",
    patient_with("2007-01-02"),
)
case(
    "cms143-ophthalmology-visit",
    M,
    "an ophthalmological services visit (92014) with both exams: numerator",
    [*patient_with(cpt="92014", system=CPT), cup_to_disc(), optic_disc()],
)
case(
    "cms143-onset-on-visit-day",
    M,
    "glaucoma diagnosed with a date-only onset on the visit day",
    patient_with(poag=glaucoma(onset="2025-03-04")),
)
