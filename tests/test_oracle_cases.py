"""fhir-cat2 agrees with the reference engine on every generated case (tests/oracle).

``tests/oracle/expected.json`` holds what fqm-execution, running the published CQL, returned for the cases
(recorded by ``tools/oracle_cases.py --record``): per measure, the patients it evaluated and the counts that
are not 0 (patient, group, population). Here fhir-cat2 evaluates the same patients with its defaults
(deviations off), and its individual MeasureReports must give the same counts; a patient without a report
counts 0 everywhere, as in the oracle's own ``compare``. The disagreements left are listed in ``EXPLAINED``
with their cause (and in the README); one that goes away, or a new one, fails the test.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.rules.loader import RuleSet

from .conftest import run_resources
from .oracle.cases import PERIOD, all_cases

EXPECTED = Path(__file__).parent / "oracle" / "expected.json"

_HCPCS_ALIAS = (
    "the case codes its G0438 visit with the CMS HCPCS URL (http://www.cms.gov/...); the value sets list"
    " G0438 under http://www.nlm.nih.gov/research/umls/hcpcs and the CQL compares systems exactly;"
    " fhir-cat2 reads both as HCPCS"
)
_BIRTHDAY = (
    "CQL precision on the 18th birthday (born 1 January, 18 at the start of the period), as cms159-age-12:"
    " the CQL does not count it; fhir-cat2 compares days"
)

EXPLAINED = {
    "CMS165 cms165-onset-june-30 initial-population": "CQL precision: a date-only onset"
    " on 30 June compared with the window's exclusive end 2025-07-01T00:00:00.000 is uncertain (null), so the"
    " CQL does not count it; fhir-cat2 compares days (a dateTime onset that day counts in both)",
    "CMS165 cms165-onset-june-30 denominator": "as its initial population",
    "CMS159 cms159-age-12 initial-population": "CQL precision: AgeInYearsAt a dateTime (the index"
    " assessment's start) from a date-only birthDate on the birthday itself is uncertain (null), so the CQL"
    " does not count the 12th birthday; fhir-cat2 compares days",
    "CMS159 cms159-age-12 denominator": "as its initial population",
    "CMS68 cms124-wellness-visit-only initial-population": _HCPCS_ALIAS,
    "CMS68 cms124-wellness-visit-only denominator": "as its initial population",
    "CMS69 cms124-wellness-visit-only initial-population": _HCPCS_ALIAS,
    "CMS69 cms124-wellness-visit-only denominator": "as its initial population",
    "CMS2 cms124-wellness-visit-only initial-population": _HCPCS_ALIAS,
    "CMS2 cms124-wellness-visit-only denominator": "as its initial population",
    "CMS22 cms124-wellness-visit-only initial-population": _HCPCS_ALIAS,
    "CMS22 cms124-wellness-visit-only denominator": "as its initial population",
    "CMS138 cms124-wellness-visit-only 64e649752ad653247b573add initial-population": _HCPCS_ALIAS,
    "CMS138 cms124-wellness-visit-only 64e649752ad653247b573add denominator": "as its initial population",
    "CMS138 cms124-wellness-visit-only 64e649752ad653247b573ade initial-population": _HCPCS_ALIAS,
    "CMS138 cms124-wellness-visit-only 64e649752ad653247b573adf initial-population": _HCPCS_ALIAS,
    "CMS138 cms124-wellness-visit-only 64e649752ad653247b573adf denominator": "as its initial population",
    "CMS22 cms143-age-18 initial-population": _BIRTHDAY,
    "CMS22 cms143-age-18 denominator": "as its initial population",
    "CMS143 cms143-onset-on-visit-day initial-population": "CQL precision: the glaucoma's date-only"
    " onset on the visit day compared with the visit's start instant (prevalence overlaps the encounter"
    " period, not 'day of') is uncertain (null), so the CQL does not count it; fhir-cat2 compares days",
    "CMS143 cms143-onset-on-visit-day denominator": "as its initial population",
    "CMS22 cms144-age-18 initial-population": "CQL precision: CMS22 takes the age at the DateTime"
    " start of the period (AgeInYearsAt(start of \"Measurement Period\"), not 'date from start'): on the"
    " 18th birthday itself a date-only birthDate makes the age uncertain (17 or 18), so the CQL does not"
    " count the patient; fhir-cat2 counts whole years on the day (18). Both visits are episodes",
    "CMS22 cms144-age-18 denominator": "as its initial population",
    "CMS22 cms951-age-18 initial-population": "as cms144-age-18 (18th birthday on 1 January)",
    "CMS22 cms951-age-18 denominator": "as its initial population",
    "CMS771 cms771-date-only-diagnosis initial-population": "CQL precision: months between a date-only BPH"
    " onset (1 October 2024) and a follow-up score on 1 April 2025 at 10:00 is uncertain (5 or 6), so"
    " 'in Interval[6, 12]' is null and the CQL has no 6-12 month score; fhir-cat2 compares days when the"
    " onset has no time (6 months to the day)",
    "CMS771 cms771-date-only-diagnosis denominator": "as its initial population",
    "CMS771 cms771-date-only-diagnosis numerator": "as its initial population",
}
"""Disagreements with the reference engine, each explained: '<measure> <patient> <population>' -> why."""


def _recorded() -> dict[str, dict[str, Any]]:
    return json.loads(EXPECTED.read_text()) if EXPECTED.is_file() else {}


def _measure_urls(ruleset: RuleSet) -> dict[str, str]:
    """CMS id -> canonical URL of the catalogue."""
    return {m.id: m.url for m in ruleset.table.measures if m.url}


@pytest.fixture(scope="module")
def got(ruleset: RuleSet) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    """fhir-cat2's counts for every case: url -> patient -> group id -> population code -> count."""
    resources = [r for made in all_cases() for r in made.resources]
    run = run_resources(resources, ruleset, period=PERIOD, report="individual")
    counts: dict[str, dict[str, dict[str, dict[str, int]]]] = defaultdict(dict)
    for report in run.reports:
        url = report["measure"].partition("|")[0]
        patient = report["subject"]["reference"].split("/")[-1]
        counts[url][patient] = {
            group.get("id", str(i)): {
                p["code"]["coding"][0]["code"]: p.get("count", 0) for p in group["population"]
            }
            for i, group in enumerate(report.get("group", []))
        }
    return counts


def test_every_case_is_recorded(ruleset: RuleSet) -> None:
    """A case the reference engine has not seen proves nothing: record it with tools/oracle_cases.py."""
    recorded, urls = _recorded(), _measure_urls(ruleset)
    missing = [
        f"{made.name} ({measure})"
        for made in all_cases()
        for measure in made.measures
        if made.name not in recorded.get(urls[measure], {}).get("patients", ())
    ]
    assert not missing, "not recorded (run tools/oracle_cases.py --record): " + ", ".join(missing)


def _disagreements(
    measure: str, expected: dict[str, Any], ours: dict[str, Any], several_groups: bool
) -> dict[str, str]:
    """'<measure> <patient> <population>' (with the group id when the measure has several) -> 'oracle N,
    ours M' for every count that differs."""
    found = {}
    for patient in expected["patients"]:
        theirs_by_group, mine_by_group = expected["counts"].get(patient, {}), ours.get(patient, {})
        for group_id in dict.fromkeys([*theirs_by_group, *mine_by_group]):
            theirs, mine = theirs_by_group.get(group_id, {}), mine_by_group.get(group_id, {})
            for code in dict.fromkeys([*theirs, *mine]):
                if theirs.get(code, 0) != mine.get(code, 0):
                    where = f"{group_id} {code}" if several_groups else code
                    found[f"{measure} {patient} {where}"] = (
                        f"oracle {theirs.get(code, 0)}, ours {mine.get(code, 0)}"
                    )
    return found


@pytest.mark.parametrize("measure", sorted({m for made in all_cases() for m in made.measures}))
def test_agrees_with_the_reference_engine(ruleset: RuleSet, got, measure: str) -> None:
    url = _measure_urls(ruleset)[measure]
    expected = _recorded().get(url)
    if not expected:
        pytest.fail(
            f"nothing recorded for {measure}: run tools/oracle_cases.py --record --measures {measure}"
        )
    # patients of cases built for other measures, recorded later, may have reports the oracle did not check
    # for this measure: only the patients it evaluated are compared
    several = len(ruleset.measure(measure).groups) > 1
    found = _disagreements(measure, expected, got.get(url, {}), several)
    unexplained = {key: why for key, why in found.items() if key not in EXPLAINED}
    assert unexplained == {}, (
        "disagreements with the reference engine (fix, or explain in EXPLAINED and README)"
    )
    mine = {key for key in EXPLAINED if key.split(" ", 1)[0] == measure}
    assert mine <= found.keys(), (
        f"explained but agreeing now (remove from EXPLAINED): {sorted(mine - found.keys())}"
    )
