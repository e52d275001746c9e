"""CMS645 bone density evaluation for prostate cancer patients on androgen deprivation therapy: generated
cases (see ``cases``)."""

from __future__ import annotations

from typing import Any

from ..conftest import ICD10, LOINC, SNOMED, coded_obs, encounter, not_done_obs, patient, request
from .cases import case
from .heart import confirmed, medication

M = "CMS645"
LEUPROLIDE = (
    "1115257"  # RxNorm, in Androgen deprivation therapy for Urology Care 2.16.840.1.113762.1.4.1151.48
)
TWELVE_MONTHS_ADT = "456381000124102"  # SNOMED: leuprolide injections for a twelve month period
DEXA = "38268-9"  # LOINC, in DEXA ... Bone Density for Urology Care 2.16.840.1.113762.1.4.1151.38
DECLINED = "105480006"  # SNOMED procedure declined by patient, in Patient Declined
ORDER_DAY = "2025-02-01T10:00:00Z"


def cancer(onset: str = "2023-05-01", **kw: Any) -> dict[str, Any]:
    return confirmed("ca", "C61", system=ICD10, onset=onset, **kw)


def adt(authored: str = "2025-02-01T09:00:00Z", **kw: Any) -> dict[str, Any]:
    return medication("adt", LEUPROLIDE, authored, **kw)


def twelve_month_order(authored: str = ORDER_DAY, **kw: Any) -> dict[str, Any]:
    return request("ServiceRequest", "order", TWELVE_MONTHS_ADT, authored, system=SNOMED, **kw)


def dexa_done(when: str = "2025-03-15T10:00:00Z", **kw: Any) -> dict[str, Any]:
    return coded_obs("dexa", DEXA, when, system=LOINC, category="imaging", **kw)


def dexa_ordered(authored: str) -> dict[str, Any]:
    return request("ServiceRequest", "dexa", DEXA, authored, system=LOINC)


def on_adt(
    *, onset: str = "2023-05-01", adt_at: str = "2025-02-01T09:00:00Z", order_at: str = ORDER_DAY, **kw: Any
) -> list[dict[str, Any]]:
    """Confirmed active prostate cancer since May 2023, an office visit on 4 March 2025, leuprolide ordered
    and a 12-month ADT order, both on 1 February 2025."""
    return [
        patient(birth="1955-03-01", gender="male"),
        cancer(onset),
        encounter("e1", "2025-03-04T09:00:00Z", **kw),
        adt(adt_at),
        twelve_month_order(order_at),
    ]


case(
    "cms645-dexa-after", M, "DEXA six weeks after the 12-month ADT order: numerator", [*on_adt(), dexa_done()]
)
case("cms645-no-dexa", M, "no DEXA: denominator", on_adt())
case(
    "cms645-dexa-ordered-before",
    M,
    "DEXA ordered in June 2024 (within 2 years before): numerator",
    [*on_adt(), dexa_ordered("2024-06-01T10:00:00Z")],
)
case("cms645-dexa-same-day", M, "DEXA on the order's day: numerator", [*on_adt(), dexa_done(ORDER_DAY)])
case(
    "cms645-dexa-3-months-after",
    M,
    "DEXA on 1 May (3 months after the order): numerator",
    [*on_adt(), dexa_done("2025-05-01T10:00:00Z")],
)
case(
    "cms645-dexa-too-late",
    M,
    "DEXA on 2 May (3 months and a day after): denominator",
    [*on_adt(), dexa_done("2025-05-02T10:00:00Z")],
)
case(
    "cms645-dexa-2-years-before",
    M,
    "DEXA on 1 February 2023 (2 years before the order): numerator",
    [*on_adt(), dexa_done("2023-02-01T10:00:00Z")],
)
case(
    "cms645-dexa-too-early",
    M,
    "DEXA on 31 January 2023 (2 years and a day before): denominator",
    [*on_adt(), dexa_done("2023-01-31T10:00:00Z")],
)
case(
    "cms645-dexa-preliminary",
    M,
    "the only DEXA is preliminary: denominator",
    [*on_adt(), dexa_done(status="preliminary")],
)
case(
    "cms645-dexa-declined",
    M,
    "DEXA not done, declined by the patient: the CQL's exception is false, denominator",
    [*on_adt(), not_done_obs("dexa", DEXA, DECLINED, "2025-02-15T10:00:00Z")],
)
case(
    "cms645-order-before-adt",
    M,
    "the 12-month order (1 February) precedes the first ADT (10 February): not in the population",
    [*on_adt(adt_at="2025-02-10T09:00:00Z"), dexa_done()],
)
case(
    "cms645-adt-window-start",
    M,
    "ADT on 1 October 2024 (3 months before the period): in the population",
    [*on_adt(adt_at="2024-10-01T09:00:00Z"), dexa_done()],
)
case(
    "cms645-adt-before-window",
    M,
    "the only ADT is on 30 September 2024, before the window: not in the population",
    [*on_adt(adt_at="2024-09-30T09:00:00Z"), dexa_done()],
)
case(
    "cms645-adt-dosage-start",
    M,
    "ADT ordered 15 September 2024 (before the window) whose dosage starts 15 October: in the population",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        encounter("e1", "2025-03-04T09:00:00Z"),
        medication("adt", LEUPROLIDE, "2024-09-15T09:00:00Z", bounds=("2024-10-15", "2025-10-15")),
        twelve_month_order(),
        dexa_done(),
    ],
)


def adt_with_event(event: str, bounds_start: str) -> dict[str, Any]:
    """Leuprolide ordered 15 September 2024 (before the window) with a dosage timing event and bounds."""
    resource = medication("adt", LEUPROLIDE, "2024-09-15T09:00:00Z", bounds=(bounds_start, "2025-10-15"))
    resource["dosageInstruction"][0]["timing"]["event"] = [event]
    return resource


case(
    "cms645-adt-event-in-window",
    M,
    "ADT whose timing event (20 October 2024) is in the window, bounds from 20 September: in the population",
    [*on_adt()[:3], adt_with_event("2024-10-20T09:00:00Z", "2024-09-20"), twelve_month_order(), dexa_done()],
)
case(
    "cms645-adt-event-before-window",
    M,
    "ADT whose timing event (20 September 2024) is before the window, bounds from 15 October: the event"
    " decides, not in the population",
    [*on_adt()[:3], adt_with_event("2024-09-20T09:00:00Z", "2024-10-15"), twelve_month_order(), dexa_done()],
)
case(
    "cms645-order-window-end",
    M,
    "ADT 1 September, the 12-month order 1 October 2025 (9 months after the start): in the population",
    [*on_adt(adt_at="2025-09-01T09:00:00Z", order_at="2025-10-01T10:00:00Z"), dexa_done()],
)
case(
    "cms645-order-after-window",
    M,
    "the 12-month order on 2 October 2025: not in the population",
    [*on_adt(adt_at="2025-09-01T09:00:00Z", order_at="2025-10-02T10:00:00Z"), dexa_done()],
)
case(
    "cms645-cancer-unconfirmed",
    M,
    "prostate cancer unconfirmed: not in the population",
    [
        patient(birth="1955-03-01", gender="male"),
        confirmed("ca", "C61", system=ICD10, onset="2023-05-01", verification="unconfirmed"),
        encounter("e1", "2025-03-04T09:00:00Z"),
        adt(),
        twelve_month_order(),
        dexa_done(),
    ],
)
case(
    "cms645-cancer-after-adt",
    M,
    "prostate cancer diagnosed 1 March 2025, after the ADT: not in the population",
    [*on_adt(onset="2025-03-01"), dexa_done()],
)
case(
    "cms645-visit-in-progress",
    M,
    "the only office visit is in progress: not in the population",
    [*on_adt(status="in-progress"), dexa_done()],
)
case(
    "cms645-order-intent-plan",
    M,
    "the 12-month ADT request is a plan, not an order: not in the population",
    [
        patient(birth="1955-03-01", gender="male"),
        cancer(),
        encounter("e1", "2025-03-04T09:00:00Z"),
        adt(),
        twelve_month_order(intent="plan"),
        dexa_done(),
    ],
)
