"""CMS177 child and adolescent MDD suicide risk assessment: generated cases (see ``cases``); each MDD visit
is an episode."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, condition, encounter, patient, procedure
from .cases import case

M = "CMS177"
ASSESSMENT = "225337009"  # Suicide risk assessment (procedure)
MDD = "F32.1"  # in Major Depressive Disorder Active 2.16.840.1.113883.3.526.3.1491
CHILD = "2012-06-01"  # 12 at the start of 2025
VISIT = "2025-03-04T09:00:00Z"
VISIT_END = "2025-03-04T09:50:00Z"


def mdd_visit(
    eid: str = "e1", start: str = VISIT, end: str = VISIT_END, *, reason: str | None = MDD, **kw: Any
) -> dict[str, Any]:
    """A finished office visit whose reasonCode is MDD."""
    resource = encounter(eid, start, end=end, **kw)
    if reason is not None:
        resource["reasonCode"] = [{"coding": [{"system": ICD10, "code": reason}]}]
    return resource


def assessed(rid: str = "sra", when: str = "2025-03-04T09:30:00Z", **kw: Any) -> dict[str, Any]:
    return procedure(rid, ASSESSMENT, when, **kw)


case(
    "cms177-assessed",
    M,
    "MDD visit (reason) with a suicide risk assessment: numerator",
    [
        patient(birth=CHILD),
        mdd_visit(),
        assessed(),
    ],
)
case(
    "cms177-not-assessed",
    M,
    "MDD visit without an assessment: denominator only",
    [
        patient(birth=CHILD),
        mdd_visit(),
    ],
)
case(
    "cms177-encounter-diagnosis",
    M,
    "MDD as the visit's diagnosis, not its reason: an episode",
    [
        patient(birth=CHILD),
        condition("mdd", MDD, onset="2025-01-10"),
        mdd_visit(reason=None, diagnoses=["mdd"]),
        assessed(),
    ],
)
case(
    "cms177-no-mdd",
    M,
    "visit for another reason (anxiety): not an episode",
    [
        patient(birth=CHILD),
        mdd_visit(reason="F41.1"),
        assessed(),
    ],
)
case(
    "cms177-mdd-condition-only",
    M,
    "MDD on the problem list but not on the visit: not an episode",
    [
        patient(birth=CHILD),
        condition("mdd", MDD, onset="2025-01-10"),
        mdd_visit(reason=None),
    ],
)
case(
    "cms177-age-6",
    M,
    "6 at the start of the period: initial population",
    [
        patient(birth="2019-01-01"),
        mdd_visit(),
    ],
)
case(
    "cms177-age-5",
    M,
    "5 at the start of the period (6 in January): not in the initial population",
    [
        patient(birth="2019-01-02"),
        mdd_visit(),
    ],
)
case(
    "cms177-age-16",
    M,
    "16 at the start of the period (17 on 2 January): initial population",
    [
        patient(birth="2008-01-02"),
        mdd_visit(),
    ],
)
case(
    "cms177-age-17",
    M,
    "17 at the start of the period: not in the initial population",
    [
        patient(birth="2008-01-01"),
        mdd_visit(),
    ],
)
case(
    "cms177-assessed-after-visit",
    M,
    "assessment the day after the visit: not during it",
    [
        patient(birth=CHILD),
        mdd_visit(),
        assessed(when="2025-03-05T09:30:00Z"),
    ],
)
case(
    "cms177-assessed-not-completed",
    M,
    "assessment in progress: not completed",
    [
        patient(birth=CHILD),
        mdd_visit(),
        assessed(status="in-progress"),
    ],
)
case(
    "cms177-two-visits",
    M,
    "two MDD visits, the second assessed: 2 episodes, 1 met",
    [
        patient(birth=CHILD),
        mdd_visit(),
        mdd_visit("e2", "2025-05-06T10:00:00Z", "2025-05-06T10:50:00Z", cpt="90834"),
        assessed(when="2025-05-06T10:20:00Z"),
    ],
)
case(
    "cms177-same-time-other-visit",
    M,
    "MDD visit and an anxiety visit at the same time, one assessment: only the MDD visit is an episode",
    [
        patient(birth=CHILD),
        mdd_visit(),
        mdd_visit("e2", reason="F41.1", cpt="90834"),
        assessed(),
    ],
)
case(
    "cms177-telephone-visit",
    M,
    "telephone visit for MDD: an episode",
    [
        patient(birth=CHILD),
        mdd_visit(cpt="99442"),
        assessed(),
    ],
)
case(
    "cms177-unfinished-visit",
    M,
    "visit not finished: not an episode",
    [
        patient(birth=CHILD),
        mdd_visit(status="in-progress"),
        assessed(),
    ],
)
