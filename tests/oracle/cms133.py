"""CMS133 cataracts, 20/40 visual acuity within 90 days (episode of care: each cataract surgery)."""

from __future__ import annotations

from typing import Any

from ..conftest import CPT, ICD10, SNOMED, coded_obs, condition, patient, procedure
from .cases import case

M = "CMS133"
SURGERY = "2025-03-04T10:00:00Z"
GOOD, POOR = "422497000", "419775003"  # 20/40 or better (in the value set); a code outside it


def surgery(rid: str = "s", when: str = SURGERY, **kw: Any) -> dict[str, Any]:
    return procedure(rid, "66984", when, system=CPT, **kw)


def acuity(when: str, answer: str = GOOD, code: str = "79880-1", **kw: Any) -> dict[str, Any]:
    return coded_obs(
        f"va{when[5:10]}", code, when, value_code=answer, value_system=SNOMED, category="exam", **kw
    )


def adult(birth: str = "1955-05-01") -> list[dict[str, Any]]:
    return [patient(birth=birth), surgery()]


case(
    "cms133-good-acuity",
    M,
    "20/40 or better 30 days after surgery: numerator",
    [*adult(), acuity("2025-04-03T09:00:00Z")],
)
case("cms133-no-acuity", M, "no acuity exam: denominator only", adult())
case(
    "cms133-day-90",
    M,
    "exam 90 days after the surgery day: counts",
    [*adult(), acuity("2025-06-02T09:00:00Z")],
)
case(
    "cms133-day-91",
    M,
    "exam 91 days after the surgery day: too late",
    [*adult(), acuity("2025-06-03T09:00:00Z")],
)
case(
    "cms133-same-day", M, "exam on the surgery day: not after it", [*adult(), acuity("2025-03-04T15:00:00Z")]
)
case("cms133-day-1", M, "exam the day after surgery: counts", [*adult(), acuity("2025-03-05T09:00:00Z")])
case(
    "cms133-poor-value",
    M,
    "acuity answer outside 20/40 or better: not met",
    [*adult(), acuity("2025-04-03T09:00:00Z", POOR)],
)
case(
    "cms133-preliminary",
    M,
    "preliminary exam result: counts (the CQL allows preliminary)",
    [*adult(), acuity("2025-04-03T09:00:00Z", status="preliminary")],
)
case(
    "cms133-snomed-code",
    M,
    "exam coded SNOMED 419775003 (best corrected visual acuity): counts",
    [*adult(), acuity("2025-04-03T09:00:00Z", code="419775003", system=SNOMED)],
)
case(
    "cms133-october-surgery",
    M,
    "surgery on 1 October: fewer than 92 days before the period end, no episode",
    [patient(birth="1955-05-01"), surgery(when="2025-10-01T10:00:00Z")],
)
case(
    "cms133-september-30",
    M,
    "surgery on 30 September: 92 days before the end, an episode",
    [patient(birth="1955-05-01"), surgery(when="2025-09-30T10:00:00Z")],
)
case(
    "cms133-two-surgeries",
    M,
    "two surgeries (each eye), one with a good exam: two episodes, one met",
    [
        *adult(),
        acuity("2025-04-03T09:00:00Z"),
        surgery("s2", "2025-08-04T10:00:00Z"),
    ],
)
case(
    "cms133-glaucoma",
    M,
    "active glaucoma diagnosed before the surgery: denominator exclusion",
    [*adult(), condition("g", "H40.10X0", system=ICD10, onset="2023-01-01")],
)
case(
    "cms133-glaucoma-after",
    M,
    "glaucoma diagnosed after the surgery: no exclusion",
    [*adult(), condition("g", "H40.10X0", system=ICD10, onset="2025-05-01")],
)
case(
    "cms133-glaucoma-resolved",
    M,
    "glaucoma resolved (clinical status resolved): not active, no exclusion",
    [
        *adult(),
        condition(
            "g", "H40.10X0", system=ICD10, onset="2023-01-01", status="resolved", abatement="2024-01-01"
        ),
    ],
)
case("cms133-age-17", M, "17 at the start of the period: not in the initial population", adult("2007-06-01"))
case(
    "cms133-not-completed",
    M,
    "surgery with status in-progress: not completed, no episode",
    [patient(birth="1955-05-01"), surgery(status="in-progress")],
)
