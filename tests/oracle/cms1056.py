"""CMS1056 excessive radiation dose or inadequate image quality for diagnostic CT: generated cases (see
``cases``).

The patient: an adult with one CT scan result on 4 March 2025 (LOINC 96914-7 'CT dose and image quality
category'), valued with its category, whose components give the calculated global noise (LOINC 96912-1, in
[hnsf'U]) and the calculated size-adjusted dose (LOINC 96913-9, in mGy.cm)."""

from __future__ import annotations

from typing import Any

from ..conftest import LOINC, patient
from .cases import case

M = "CMS1056"
UCUM = "http://unitsofmeasure.org"
CT_CATEGORY = "96914-7"
NOISE, DOSE = "96912-1", "96913-9"
HOUNSFIELD = "[hnsf'U]"
# category answer codes with the CQL's displays, and its thresholds (noise, size-adjusted dose)
ABDOMEN_ROUTINE = ("LA31753-9", "Abdomen and Pelvis Routine Dose")  # 29, 644
HEAD_HIGH = ("LA31764-6", "Head High Dose")  # 115, 1832
CHEST_LOW = ("LA31758-8", "Chest Low Dose")  # 55, 377
FULL_BODY = ("LA31771-1", "Full Body")


def component(code: str, value: float | None, unit: str | None, *, as_code: bool = True) -> dict[str, Any]:
    made: dict[str, Any] = {"code": {"coding": [{"system": LOINC, "code": code}]}}
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity.update({"system": UCUM, "code": unit} if as_code else {"unit": unit})
        made["valueQuantity"] = quantity
    return made


def ct_scan(
    category: tuple[str, str] | None = ABDOMEN_ROUTINE,
    noise: float | None = 20,
    dose: float | None = 500,
    *,
    oid: str = "ct",
    when: str = "2025-03-04T10:00:00Z",
    display: str | None = "",
    noise_unit: str = HOUNSFIELD,
    dose_unit: str = "mGy.cm",
    status: str = "final",
    components: list[dict[str, Any]] | None = None,
    period_start: str | None = None,
) -> dict[str, Any]:
    """A CT scan's dose and image quality result; ``display``: "" is the CQL's display, None none."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": CT_CATEGORY}]},
        "subject": {"reference": "Patient/p1"},
    }
    if period_start is not None:
        resource["effectivePeriod"] = {"start": period_start, "end": when}
    else:
        resource["effectiveDateTime"] = when
    if category is not None:
        coding: dict[str, Any] = {"system": LOINC, "code": category[0]}
        shown = category[1] if display == "" else display
        if shown is not None:
            coding["display"] = shown
        resource["valueCodeableConcept"] = {"coding": [coding]}
    if components is None:
        components = [component(NOISE, noise, noise_unit), component(DOSE, dose, dose_unit)]
    resource["component"] = components
    return resource


def adult(birth: str = "1970-05-01") -> dict[str, Any]:
    return patient(birth=birth)


case(
    "cms1056-below",
    M,
    "abdomen routine dose, noise 20 and dose 500 (below 29 / 644): denominator",
    [adult(), ct_scan()],
)
case("cms1056-noise-at", M, "noise 29, the category's threshold: numerator", [adult(), ct_scan(noise=29)])
case("cms1056-noise-below", M, "noise 28.9: denominator", [adult(), ct_scan(noise=28.9)])
case("cms1056-dose-at", M, "size-adjusted dose 644, the threshold: numerator", [adult(), ct_scan(dose=644)])
case("cms1056-dose-below", M, "size-adjusted dose 643.9: denominator", [adult(), ct_scan(dose=643.9)])
case(
    "cms1056-head-high",
    M,
    "head high dose, noise 115 (its threshold): numerator",
    [adult(), ct_scan(HEAD_HIGH, noise=115, dose=900)],
)
case(
    "cms1056-head-high-below",
    M,
    "head high dose, noise 114 and dose 1831: denominator",
    [adult(), ct_scan(HEAD_HIGH, noise=114, dose=1831)],
)
case(
    "cms1056-chest-low-dose",
    M,
    "chest low dose, size-adjusted dose 377 (its threshold): numerator",
    [adult(), ct_scan(CHEST_LOW, noise=10, dose=377)],
)
case("cms1056-full-body", M, "full body: excluded", [adult(), ct_scan(FULL_BODY, noise=10, dose=100)])
case(
    "cms1056-full-body-and-other",
    M,
    "a full-body scan and a chest scan over its threshold: excluded, and in the numerator",
    [adult(), ct_scan(FULL_BODY, oid="ct1"), ct_scan(CHEST_LOW, noise=60, dose=100, oid="ct2")],
)
case(
    "cms1056-no-display",
    M,
    "the category coding has no display, noise over the threshold",
    [adult(), ct_scan(noise=40, display=None)],
)
case(
    "cms1056-other-display",
    M,
    "the category coding has another display, noise over the threshold",
    [adult(), ct_scan(noise=40, display="abdomen/pelvis routine")],
)
case(
    "cms1056-no-noise",
    M,
    "no global noise component: initial population only",
    [adult(), ct_scan(components=[component(DOSE, 900, "mGy.cm")])],
)
case(
    "cms1056-no-dose-value",
    M,
    "the size-adjusted dose component has no value: initial population only",
    [adult(), ct_scan(dose=None)],
)
case(
    "cms1056-dose-other-unit",
    M,
    "the size-adjusted dose is in mGy: initial population only",
    [adult(), ct_scan(dose=900, dose_unit="mGy")],
)
case(
    "cms1056-unit-text",
    M,
    "units given as unit text without system or code, noise over the threshold: numerator",
    [
        adult(),
        ct_scan(
            components=[
                component(NOISE, 40, HOUNSFIELD, as_code=False),
                component(DOSE, 100, "mGy.cm", as_code=False),
            ]
        ),
    ],
)
case("cms1056-no-category", M, "no value: initial population only", [adult(), ct_scan(None)])
case(
    "cms1056-preliminary",
    M,
    "a preliminary result (the CQL reads no status), over the threshold: numerator",
    [adult(), ct_scan(noise=40, status="preliminary")],
)
case(
    "cms1056-age-18",
    M,
    "18 on the first day of the period: in the population",
    [adult("2007-01-01"), ct_scan(noise=40)],
)
case(
    "cms1056-age-17",
    M,
    "18 on 2 January of the period (17 at its start): not in the population",
    [adult("2007-01-02"), ct_scan(noise=40)],
)
case(
    "cms1056-before-period",
    M,
    "the scan on 31 December 2024: not in the population",
    [adult(), ct_scan(noise=40, when="2024-12-31T10:00:00Z")],
)
case(
    "cms1056-last-day",
    M,
    "the scan on 31 December 2025: numerator",
    [adult(), ct_scan(noise=40, when="2025-12-31T10:00:00Z")],
)
case(
    "cms1056-period-ending-in",
    M,
    "the scan's effective period starts in December 2024 and ends on 1 January 2025: numerator",
    [adult(), ct_scan(noise=40, when="2025-01-01T01:00:00Z", period_start="2024-12-31T22:00:00Z")],
)
case(
    "cms1056-two-scans",
    M,
    "one scan below, one over the thresholds: numerator",
    [adult(), ct_scan(oid="ct1"), ct_scan(HEAD_HIGH, noise=130, oid="ct2", when="2025-06-01T10:00:00Z")],
)


def _versioned() -> dict[str, Any]:
    scan = ct_scan(noise=40)
    scan["valueCodeableConcept"]["coding"][0]["version"] = "2.77"
    return scan


def _valued_by_text() -> dict[str, Any]:
    scan = ct_scan(None, noise=40)
    scan["valueString"] = "abdomen and pelvis, routine dose"
    return scan


case(
    "cms1056-coding-version",
    M,
    "the category coding carries a version (Code equality fails), noise over the threshold: denominator",
    [adult(), _versioned()],
)
case(
    "cms1056-value-text",
    M,
    "the value is text, not a category: denominator, no row of the table applies",
    [adult(), _valued_by_text()],
)
case(
    "cms1056-cancelled",
    M,
    "a cancelled result (QI-Core ObservationCancelled, not an Observation retrieve's): not in the population",
    [adult(), ct_scan(noise=40, status="cancelled")],
)
case(
    "cms1056-period-ending-after",
    M,
    "the scan's effective period runs from 31 December 2025 to 1 January 2026: not in the population",
    [adult(), ct_scan(noise=40, when="2026-01-01T01:00:00Z", period_start="2025-12-31T22:00:00Z")],
)
case(
    "cms1056-full-body-no-values",
    M,
    "a full-body scan without its size-adjusted dose: initial population only, not excluded",
    [adult(), ct_scan(FULL_BODY, noise=10, dose=None)],
)
