"""Score change between two assessments (``fhir_cat2/criteria/scores.py``): ``score_change`` judged on its
own in a one-population table (CMS771 reads it: first IPSS minus the last 6-12 months later >= 3)."""

from __future__ import annotations

from pathlib import Path
from textwrap import indent
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.criteria.plan import reads_populations
from fhir_cat2.errors import RulesError
from fhir_cat2.rules.criteria_schema import Criterion, ScoreChangeCriterion

from .conftest import coded_obs
from .support.tables import load_table, numerator_met, one_measure_table, run_table

SCORE = "80976-4"  # LOINC IPSS total
ITEM = "81090-3"  # LOINC IPSS quality-of-life item
OTHER = "80883-2"  # LOINC AUA symptom index (scored with the item)
NUMERATOR = f"""\
score_change:
  baseline:
    resource: Observation
    label: first score in the first quarter
    codes: ["loinc#{SCORE}", "loinc#{OTHER}"]
    statuses: [final]
    value_present: true
    starts_during: [period.start, period.start+3mo-1d]
    earliest_only: true
    latest_by: start
    as: first
  follow_up:
    resource: Observation
    label: last score 30 to 180 days after the first
    codes: ["loinc#{SCORE}", "loinc#{OTHER}"]
    statuses: [final]
    value_present: true
    starts_during: [first.start+30d, first.start+180d]
    latest_only: true
    latest_by: start
  plus:
    - for_codes: ["loinc#{OTHER}"]
      exists:
        resource: Observation
        label: item of the same day
        codes: ["loinc#{ITEM}"]
        statuses: [final]
        value_present: true
        starts_during: [assessment.start, assessment.start]
        latest_only: true
        latest_by: start
"""


def table(fact: str) -> str:
    return one_measure_table(NUMERATOR + indent(fact, "  "))


def score(oid: str, value: Any, when: str, *, code: str = SCORE, kind: str = "integer") -> dict[str, Any]:
    return coded_obs(oid, code, when, value=value, value_kind=kind)


def met(tmp_path: Path, fact: str, *scores: dict[str, Any]) -> bool:
    return bool(numerator_met(tmp_path, table(fact), *scores))


DROP_3 = "change: baseline-minus-follow-up\nband: {ge: 3}"
RISE_5 = "change: follow-up-minus-baseline\nband: {ge: 5}\nvalue_type: number"
JAN = "2025-01-10T10:00:00Z"
APR = "2025-04-10T10:00:00Z"


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [(18, 15, True), (18, 16, False), (12, 18, False), (18, 0, True)],
    ids=["drop-of-3", "drop-of-2", "rise", "to-zero"],
)
def test_baseline_minus_follow_up(tmp_path, first, then, expected):
    assert met(tmp_path, DROP_3, score("a", first, JAN), score("b", then, APR)) is expected


def test_follow_up_minus_baseline_with_numbers(tmp_path):
    """``value_type: number`` reads a valueQuantity too; the change may be a rise."""
    rise = [score("a", 40.5, JAN, kind="quantity"), score("b", 45.5, APR, kind="quantity")]
    assert met(tmp_path, RISE_5, *rise)
    assert not met(tmp_path, RISE_5, score("a", 40.5, JAN, kind="quantity"), score("b", 45, APR))


def test_integer_scores_only_read_value_integer(tmp_path):
    """The CQL's ``value as Integer``: a valueQuantity has no integer score, so the change is unknown."""
    assert not met(tmp_path, DROP_3, score("a", 18, JAN, kind="quantity"), score("b", 10, APR))
    assert not met(tmp_path, DROP_3, score("a", 18, JAN), score("b", 10, APR, kind="quantity"))


def test_the_first_baseline_and_the_last_follow_up_count(tmp_path):
    scores = [score("a", 18, JAN), score("a2", 30, "2025-02-01T10:00:00Z")]
    assert met(tmp_path, DROP_3, *scores, score("b", 15, APR))  # 18 - 15, not 30 - 15 alone
    later = [score("b", 10, APR), score("c", 17, "2025-06-01T10:00:00Z")]
    assert not met(tmp_path, DROP_3, score("a", 18, JAN), *later)  # 18 - 17: the last


def test_follow_up_window_follows_the_baseline(tmp_path):
    """The follow-up exists sees the baseline under its ``as`` (first.start+30d)."""
    assert met(tmp_path, DROP_3, score("a", 18, JAN), score("b", 10, "2025-02-09T10:00:00Z"))
    assert not met(tmp_path, DROP_3, score("a", 18, JAN), score("b", 10, "2025-02-08T10:00:00Z"))


def test_plus_adds_the_same_day_item(tmp_path):
    """An assessment with a ``plus`` code scores its value plus the item's; without the item, no score."""
    first = [score("a", 15, JAN, code=OTHER), score("i", 4, "2025-01-10T11:00:00Z", code=ITEM)]
    assert met(tmp_path, DROP_3, *first, score("b", 16, APR))  # 19 - 16
    assert not met(tmp_path, DROP_3, *first, score("b", 17, APR))  # 19 - 17
    assert not met(tmp_path, DROP_3, score("a", 15, JAN, code=OTHER), score("b", 10, APR))
    next_day = score("i", 4, "2025-01-11T10:00:00Z", code=ITEM)
    assert not met(tmp_path, DROP_3, score("a", 15, JAN, code=OTHER), next_day, score("b", 10, APR))


def test_no_follow_up_does_not_hold(tmp_path):
    assert not met(tmp_path, DROP_3, score("a", 18, JAN))
    assert not met(tmp_path, DROP_3)


def test_words_name_both_scores_and_the_change(tmp_path):
    run = run_table(tmp_path, table(DROP_3), score("a", 18, JAN), score("b", 12, APR))
    (numerator,) = [p for p in run.result("CMS9999").groups[0].populations if p.code == "numerator"]
    trail = numerator.trail
    assert trail is not None
    assert trail.met
    assert "scores 18" in trail.because and "scores 12" in trail.because and "change 6" in trail.because
    assert {e.ref for e in trail.evidence} == {"Observation/a", "Observation/b"}


def test_each_side_must_pick_one_assessment():
    side = {"resource": "Observation", "codes": [f"loinc#{SCORE}"], "during": "period"}
    with pytest.raises(ValidationError, match="earliest_only or latest_only"):
        ScoreChangeCriterion.model_validate(
            {
                "baseline": side,
                "follow_up": {**side, "latest_only": True},
                "change": "baseline-minus-follow-up",
                "band": {"ge": 3},
            }
        )


def test_an_unbound_anchor_is_reported(tmp_path):
    unbound = table(DROP_3).replace("first.start+30d", "nowhere.start+30d")
    with pytest.raises(RulesError, match="nowhere"):
        load_table(tmp_path, unbound)


def test_a_score_change_reading_populations_is_not_memoised(tmp_path):
    """A population membership inside a side's ``where`` keeps the criterion out of the memo."""
    side = {"resource": "Observation", "codes": [f"loinc#{SCORE}"], "during": "period", "earliest_only": True}
    gated = {**side, "where": {"population": "denominator"}}
    change = {"change": "baseline-minus-follow-up", "band": {"ge": 3}}
    plain = Criterion.model_validate({"score_change": {"baseline": side, "follow_up": side, **change}})
    reading = Criterion.model_validate({"score_change": {"baseline": gated, "follow_up": side, **change}})
    assert not reads_populations(plain, {})
    assert reads_populations(reading, {})
