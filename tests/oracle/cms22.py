"""CMS22 BP screening and follow-up (episode of care: each qualifying encounter): generated cases."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, bp_panel, condition, encounter, patient, quantity_obs, request
from .cases import case

M = "CMS22"
VISIT = "2025-03-04T09:00:00Z"


def visit(eid: str = "e1", when: str = VISIT) -> list[dict[str, Any]]:
    return [encounter(eid, when, end=when.replace("T09:00", "T09:45"))]


def adult(birth: str = "1980-05-01") -> list[dict[str, Any]]:
    return [patient(birth=birth), *visit()]


def service(rid: str, code: str, **kw: Any) -> dict[str, Any]:
    return request("ServiceRequest", rid, code, "2025-03-04T09:30:00Z", **kw)


case("cms22-normal", M, "last BP 118/76: normal, numerator", [*adult(), bp_panel("bp", 118, 76)])
case("cms22-no-bp", M, "no BP at the visit: denominator only", adult())
case("cms22-elevated-no-plan", M, "125/75 with nothing ordered: not met", [*adult(), bp_panel("bp", 125, 75)])
case(
    "cms22-elevated-referral",
    M,
    "125/75 with a referral for the reading ordered at the visit: numerator",
    [*adult(), bp_panel("bp", 125, 75), service("ref", "134403003", reason="R03.0", reason_system=ICD10)],
)
case(
    "cms22-elevated-rescreen-lifestyle",
    M,
    "125/75 with a 6-month rescreen and a lifestyle recommendation ordered: numerator",
    [*adult(), bp_panel("bp", 125, 75), service("rs", "183617005"), service("ls", "313204009")],
)
case(
    "cms22-last-reading-decides",
    M,
    "142/92 then 118/76 at the same visit: the last reading (normal) decides",
    [
        *adult(),
        bp_panel("bp1", 142, 92, "2025-03-04T09:05:00Z"),
        bp_panel("bp2", 118, 76, "2025-03-04T09:35:00Z"),
    ],
)
case(
    "cms22-first-hypertensive-follow-up",
    M,
    "first hypertensive reading 135/85 with a 4-week rescreen and a lifestyle recommendation: numerator",
    [*adult(), bp_panel("bp", 135, 85), service("rs", "183617005"), service("ls", "313204009")],
)
case(
    "cms22-first-hypertensive-no-plan",
    M,
    "first hypertensive reading 135/85, nothing ordered: not met",
    [*adult(), bp_panel("bp", 135, 85)],
)
case(
    "cms22-second-hypertensive",
    M,
    "145/95 in 2024 and 145/95 at the visit, nothing ordered: a second hypertensive reading, not met",
    [
        *adult(),
        encounter("e0", "2024-06-04T09:00:00Z"),
        bp_panel("bp0", 145, 95, "2024-06-04T09:10:00Z", eid="e0"),
        bp_panel("bp", 145, 95),
    ],
)
case(
    "cms22-two-visits",
    M,
    "two qualifying visits, normal at the first, elevated without a plan at the second: two episodes",
    [
        *adult(),
        bp_panel("bp", 110, 70),
        *visit(eid="e2", when="2025-09-04T09:00:00Z"),
        bp_panel("bp2", 125, 75, "2025-09-04T09:10:00Z", eid="e2"),
    ],
)
case(
    "cms22-hypertension-problem",
    M,
    "hypertension on the problem list before the visit: every episode excluded",
    [*adult(), condition("htn", "I10", system=ICD10, onset="2022-01-01", category="problem-list-item")],
)
case(
    "cms22-panel-55284-4",
    M,
    "normal BP only as a 55284-4 panel: no bp-profile reading by the CQL (deviation bp-panel-55284-4)",
    [*adult(), bp_panel("bp", 110, 70, code="55284-4")],
)
case(
    "cms22-separate-observations",
    M,
    "normal BP as separate systolic/diastolic Observations: the CQL reads bp panels (deviation"
    " bp-separate-observations)",
    [
        *adult(),
        quantity_obs("sbp", "8480-6", 110, "mm[Hg]", "2025-03-04T09:10:00Z", category="vital-signs"),
        quantity_obs("dbp", "8462-4", 70, "mm[Hg]", "2025-03-04T09:10:00Z", category="vital-signs"),
    ],
)
case(
    "cms22-age-17",
    M,
    "17 at the start of the period: no episode",
    [*adult("2007-01-02"), bp_panel("bp", 110, 70)],
)
case(
    "cms22-virtual",
    M,
    "a virtual visit: not a qualifying encounter",
    [patient(birth="1980-05-01"), encounter("e1", VISIT, klass="VR"), bp_panel("bp", 110, 70)],
)
case(
    "cms22-first-hypertensive-preliminary",
    M,
    "the visit's only BP, 135/85, is preliminary: the CQL's first-hypertensive branch reads every status",
    [
        *adult(),
        bp_panel("bp", 135, 85, status="preliminary"),
        service("rs", "183617005"),
        service("ls", "313204009"),
    ],
)
