"""Care gaps from the measures' own logic: open or closed per group, and what would close an open one, in a
care coordinator's words, with the evidence the numerator's criteria used (``fhir_cat2.measures.gaps``)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from fhir_cat2.explain import outcome_to_json, outcome_to_text
from fhir_cat2.measures.gaps import CLOSED, OPEN, CareGap, care_gaps
from fhir_cat2.rules.loader import read_table

from .conftest import (
    CPT,
    HCPCS,
    a1c,
    bp_panel,
    coded_obs,
    condition,
    encounter,
    patient,
    procedure,
    run_resources,
)

END = date(2025, 12, 31)
NON_USER = "266919005"  # never smoked tobacco


def gaps_of(run, measure_id: str, ruleset) -> list[CareGap]:
    return care_gaps(ruleset.measure(measure_id), run.result(measure_id), END)


def hypertensive(*extra):
    return [patient(birth="1960-06-01"), condition("htn", "I10", onset="2019-01-01"), encounter(), *extra]


def diabetic(*extra):
    return [patient(birth="1960-06-01"), condition("dm", "E11.9", onset="2019-01-01"), encounter(), *extra]


def adult_visits(*extra):
    return [
        patient(birth="1970-06-01"),
        encounter("v0", "2025-03-04T09:00:00Z"),
        encounter("v1", "2025-04-04T09:00:00Z"),
        *extra,
    ]


def test_every_group_of_every_catalogue_measure_words_its_gap():
    """The gap wording is data: each group of each measure in the shipped rules table has one."""
    missing = [f"{m.id} group {g.id}" for m in read_table().measures for g in m.groups if g.gap is None]
    assert missing == []


# --------------------------------------------------------------------------------------- BP (CMS165)


def test_bp_open_gap_names_the_last_reading_and_what_closes_it(ruleset):
    resources = hypertensive(bp_panel("bp", 152, 94, "2025-10-02T09:00:00Z", eid=None))
    (gap,) = gaps_of(run_resources(resources, ruleset), "CMS165", ruleset)
    assert gap.status == OPEN
    assert gap.close == (
        "last BP 152/94 mm[Hg] on 2025-10-02 is 140/90 or above: "
        "a blood pressure reading below 140/90 by 2025-12-31 closes it"
    )
    assert gap.by == END


def test_bp_open_gap_without_a_reading(ruleset):
    (gap,) = gaps_of(run_resources(hypertensive(), ruleset), "CMS165", ruleset)
    assert gap.close == (
        "no blood pressure reading in 2025: a blood pressure reading below 140/90 by 2025-12-31 closes it"
    )


def test_bp_closed_gap(ruleset):
    resources = hypertensive(bp_panel("bp", 128, 78, "2025-10-02T09:00:00Z", eid=None))
    (gap,) = gaps_of(run_resources(resources, ruleset), "CMS165", ruleset)
    assert (gap.status, gap.close, gap.need) == (CLOSED, "", "a blood pressure reading below 140/90")


def test_no_gap_outside_the_denominator_or_excluded(ruleset):
    """Not hypertensive: no gap at all; in hospice: excluded, no gap either."""
    assert gaps_of(run_resources([patient(), encounter()], ruleset), "CMS165", ruleset) == []
    hospice = encounter("h", "2025-06-01T09:00:00Z", cpt="Q5003", system=HCPCS, klass="HH")
    run = run_resources(hypertensive(hospice), ruleset)
    assert run.outcome("CMS165") == "excluded"
    assert gaps_of(run, "CMS165", ruleset) == []


# ----------------------------------------------------------------------------------- HbA1c (CMS122)


def test_hba1c_inverse_measure_open_when_in_the_numerator(ruleset):
    """CMS122 is inverse: the numerator (above 9% or no result) is the gap."""
    run = run_resources(diabetic(a1c("a", 9.6, "2025-04-02T08:00:00Z", eid=None)), ruleset)
    assert run.population("CMS122")["numerator"] is True
    (gap,) = gaps_of(run, "CMS122", ruleset)
    assert gap.status == OPEN
    assert gap.close == (
        "last HbA1c 9.6 % on 2025-04-02 is above 9%: an HbA1c (or GMI) result of 9% or below by 2025-12-31 "
        "closes it"
    )


def test_hba1c_missing_result_is_an_open_gap(ruleset):
    (gap,) = gaps_of(run_resources(diabetic(), ruleset), "CMS122", ruleset)
    assert gap.close == (
        "no HbA1c result in 2025: an HbA1c (or GMI) result of 9% or below by 2025-12-31 closes it"
    )


def test_hba1c_controlled_is_a_closed_gap(ruleset):
    run = run_resources(diabetic(a1c("a", 7.1, "2025-04-02T08:00:00Z", eid=None)), ruleset)
    assert run.population("CMS122")["numerator"] is False
    (gap,) = gaps_of(run, "CMS122", ruleset)
    assert (gap.status, gap.close) == (CLOSED, "")


# ------------------------------------------------------------------------- screening (CMS138 tobacco)


def test_tobacco_screening_open_gap(ruleset):
    gap = gaps_of(run_resources(adult_visits(), ruleset), "CMS138", ruleset)[0]
    assert (gap.status, gap.group_index) == (OPEN, 0)
    assert gap.close == "no tobacco use screening in 2025: a tobacco use screening by 2025-12-31 closes it"


def test_tobacco_screening_closed_gap(ruleset):
    screened = coded_obs("s", "72166-2", "2025-03-04T09:10:00Z", value_code=NON_USER)
    gaps = gaps_of(run_resources(adult_visits(screened), ruleset), "CMS138", ruleset)
    # group 2 (cessation) is for users only: a non-user has no gap there
    assert [(g.group_index, g.status) for g in gaps] == [(0, CLOSED), (2, CLOSED)]


# ------------------------------------------------------------------------------ colorectal (CMS130)


def test_colorectal_open_gap_when_the_colonoscopy_is_older_than_its_window(ruleset):
    old = procedure("c", "45378", "2015-12-31T09:00:00Z", system=CPT)
    run = run_resources([patient(birth="1965-06-01"), encounter(), old], ruleset)
    (gap,) = gaps_of(run, "CMS130", ruleset)
    assert gap.status == OPEN
    assert gap.close == (
        "no colonoscopy in the last 10 years, no sigmoidoscopy or CT colonography in 5, no FIT-DNA in 3, "
        "no FOBT in 2025: a colorectal cancer screening by 2025-12-31 closes it"
    )


def test_colorectal_closed_gap(ruleset):
    recent = procedure("c", "45378", "2018-03-01T09:00:00Z", system=CPT)
    run = run_resources([patient(birth="1965-06-01"), encounter(), recent], ruleset)
    (gap,) = gaps_of(run, "CMS130", ruleset)
    assert (gap.status, gap.need) == (CLOSED, "a colorectal cancer screening")


# ---------------------------------------------------------------------------------------- episodes


def test_episode_measure_has_one_gap_per_episode(ruleset):
    """CMS68 (documentation of current medications) is per visit: each episode has its own gap."""
    resources = [patient(birth="1970-06-01"), encounter("e1"), encounter("e2", "2025-05-04T09:00:00Z")]
    gaps = gaps_of(run_resources(resources, ruleset), "CMS68", ruleset)
    assert [(g.episode, g.status) for g in gaps] == [("Encounter/e1", OPEN), ("Encounter/e2", OPEN)]
    assert gaps[0].close == (
        "current medications not documented at the visit: "
        "current medications documented at the visit by 2025-12-31 closes it"
    )


# ----------------------------------------------------------------------------------------- explain


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_shows_the_same_gap_line(ruleset, fmt):
    resources = hypertensive(bp_panel("bp", 152, 94, "2025-10-02T09:00:00Z", eid=None))
    run = run_resources(resources, ruleset)
    (outcome,) = run.outcomes
    (gap,) = gaps_of(run, "CMS165", ruleset)
    if fmt == "text":
        text = outcome_to_text(outcome, ruleset, ["CMS165"], period_end=END)
        assert f"  NOT MET\n    open gap: {gap.close}\n" in text
    else:
        data = outcome_to_json(outcome, ruleset, ["CMS165"], period_end=END)
        assert data["measures"][0]["groups"][0]["gap"] == {
            "status": "open-gap",
            "need": "a blood pressure reading below 140/90",
            "close": gap.close,
            "by": "2025-12-31",
        }


def test_hba1c_documented_without_a_result_counts_as_none(ruleset):
    """A test documented without a value is 'no result' to CMS122: the gap says so."""
    run = run_resources(diabetic(a1c("n", None, "2025-07-07T08:00:00Z", eid=None, absent=True)), ruleset)
    (gap,) = gaps_of(run, "CMS122", ruleset)
    assert gap.close.startswith("no HbA1c result in 2025: ")


# ------------------------------------------------------------------------------------- gaps.csv wording


def test_gaps_csv_says_what_would_close_each_gap_per_family(tmp_path):
    """BP, HbA1c, screening and colorectal: an open gap each, with its exact words; a closed one (CMS165 of
    the patient whose open gap is CMS122) has no 'what would close it'."""
    from fhir_cat2.cli import main

    def who(pid, resources):
        for resource in resources:
            if resource["resourceType"] == "Patient":
                resource["id"] = pid
            else:
                resource["id"] = f"{pid}-{resource['id']}"
                for key in ("subject", "patient"):
                    if key in resource:
                        resource[key] = {"reference": f"Patient/{pid}"}
        return resources

    resources = [
        *who("bp-open", hypertensive(bp_panel("bp", 152, 94, "2025-10-02T09:00:00Z", eid=None))),
        *who("a1c-open", diabetic(a1c("a", 9.6, "2025-04-02T08:00:00Z", eid=None))),
        *who("tobacco-open", adult_visits()),
        *who(
            "crc-open",
            [
                patient(birth="1965-06-01"),
                encounter(),
                procedure("c", "45378", "2015-12-31T09:00:00Z", system=CPT),
            ],
        ),
        *who(
            "bp-closed",
            [
                *hypertensive(bp_panel("bp", 128, 78, "2025-10-02T09:00:00Z", eid=None)),
                condition("dm", "E11.9"),
            ],
        ),
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(r) + "\n" for r in resources))
    out = tmp_path / "out"
    measures = [arg for m in ("CMS165", "CMS122", "CMS138", "CMS130") for arg in ("--measure", m)]
    argv = ["replay", str(source), "--out", str(out), "--period", "2025", "--emit", "measure-report,gaps"]
    assert main([*argv, *measures, "--no-progress"]) == 0
    rows = {
        (row["patient"], row["measure"]): row
        for row in csv.DictReader(io.StringIO((out / "gaps.csv").read_text()))
        if row["group"]
        in (
            "",
            "650b4f94da013638e7b3dd9a",
            "661d86730f0a9077c1d5a59d",
            "64e649752ad653247b573add",
            "654a405f78418140875e351c",
        )
    }
    expected = {
        ("bp-open", "CMS165"): "last BP 152/94 mm[Hg] on 2025-10-02 is 140/90 or above: "
        "a blood pressure reading below 140/90 by 2025-12-31 closes it",
        ("a1c-open", "CMS122"): "last HbA1c 9.6 % on 2025-04-02 is above 9%: "
        "an HbA1c (or GMI) result of 9% or below by 2025-12-31 closes it",
        (
            "tobacco-open",
            "CMS138",
        ): "no tobacco use screening in 2025: a tobacco use screening by 2025-12-31 closes it",
        (
            "crc-open",
            "CMS130",
        ): "no colonoscopy in the last 10 years, no sigmoidoscopy or CT colonography in 5, "
        "no FIT-DNA in 3, no FOBT in 2025: a colorectal cancer screening by 2025-12-31 closes it",
        (
            "bp-closed",
            "CMS122",
        ): "no HbA1c result in 2025: an HbA1c (or GMI) result of 9% or below by 2025-12-31 closes it",
    }
    for key, words in expected.items():
        assert (rows[key]["status"], rows[key]["what would close it"], rows[key]["by when"]) == (
            "open-gap",
            words,
            "2025-12-31",
        ), key
    closed = rows[("bp-closed", "CMS165")]
    assert (closed["status"], closed["gap"], closed["what would close it"], closed["by when"]) == (
        "closed-gap",
        "a blood pressure reading below 140/90",
        "",
        "",
    )


# ------------------------------------------------------------------------ high-risk medication (CMS156)


def test_high_risk_medication_inverse_measure_open_gap_names_the_order_and_the_review():
    """CMS156 is inverse: an order of a high-risk medication (rate 1) is the open gap; nothing done by the end
    of the period undoes it, so the words say to review it."""
    from fhir_cat2.rules.loader import load_rules

    from .oracle.cms156 import DIPHENHYDRAMINE, older, order

    ruleset = load_rules()
    run = run_resources([*older(), order("a1", DIPHENHYDRAMINE, refills=1, days=30)], ruleset)
    first = gaps_of(run, "CMS156", ruleset)[0]
    assert (first.group_index, first.status) == (0, OPEN)
    assert first.close == (
        "a high-risk medication ordered on 2025-03-04: an order made cannot be undone: "
        "review the high-risk medications with the patient (stop or switch)"
    )
    closed = gaps_of(run_resources(older(), ruleset), "CMS156", ruleset)
    assert [gap.status for gap in closed] == [CLOSED, CLOSED, CLOSED]
