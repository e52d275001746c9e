"""fhir-cat2 explain: the trail of a met, a not-met and an excluded patient of CMS165 and CMS122 answers 'why'
in its first lines (outcome and deciding criteria with resources, values and dates), as text and as JSON."""

from __future__ import annotations

import json
import uuid

import pytest

from fhir_cat2.cli import main

from .conftest import ROOT

NS = uuid.UUID("5b0c3b1e-6f1e-4c39-9a55-0c2f3b7a1d10")  # tools/make_fixtures.py


def fixture_patient(key: str) -> str:
    return str(uuid.uuid5(NS, f"{key}/patient"))


def explain(capsys, key: str, measure: str, *extra: str) -> str:
    assert (
        main(
            [
                "explain",
                str(ROOT / "fixtures"),
                "--patient",
                fixture_patient(key),
                "--measure",
                measure,
                "--period",
                "2025",
                *extra,
            ]
        )
        == 0
    )
    return capsys.readouterr().out


def headline(text: str, measure: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(measure))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "trail:")
    return lines[start:end]


@pytest.mark.parametrize(
    ("key", "measure", "outcome", "reason"),
    [
        (
            "bp-controlled",
            "CMS165",
            "MET",
            "lowest systolic_bp 138 mm[Hg] is < 140; lowest diastolic_bp 84 mm[Hg] is < 90",
        ),
        ("bp-uncontrolled", "CMS165", "NOT MET", "lowest systolic_bp 142 mm[Hg] is not < 140"),
        (
            "bp-hospice",
            "CMS165",
            "EXCLUDED",
            "Hospice encounter: 1 matching Encounter overlaps 2025-01-01..2025-12-31",
        ),
        ("a1c-poor", "CMS122", "MET", "lowest hba1c 9.4 % is > 9"),
        ("a1c-mmol", "CMS122", "NOT MET", "hba1c 5.8 % (documented 58 mmol/mol) on 2025-04-01"),
        ("a1c-palliative", "CMS122", "EXCLUDED", "Palliative care diagnosis: 1 matching Condition overlaps"),
    ],
)
def test_headline_says_the_outcome_and_why(capsys, key, measure, outcome, reason):
    """The first lines of a measure: outcome, then the deciding criterion with the values and dates."""
    head = "\n".join(headline(explain(capsys, key, measure), measure))
    assert f"\n  {outcome}\n" in head + "\n"
    assert reason in head, head


def test_inverse_measure_says_so(capsys):
    """CMS122 is inverse (improvementNotation decrease): the headline says the numerator is the poor
    outcome."""
    head = "\n".join(headline(explain(capsys, "a1c-poor", "CMS122"), "CMS122"))
    assert "inverse measure: the numerator is the poor outcome" in head


def test_not_met_names_the_missing_numerator_evidence(capsys):
    """'Why did this patient miss the numerator': the failed numerator criterion and the reading that failed
    it."""
    head = headline(explain(capsys, "bp-uncontrolled", "CMS165"), "CMS165")
    assert any("missed the numerator because" in line for line in head)
    assert any("Observation/" in line and "systolic_bp 142" in line for line in head)
    # The emergency reading that would have passed is shown as not counted, with the reason.
    assert any("not counted: taken in a EMER encounter" in line for line in head)


def test_missing_test_is_explained(capsys):
    """CMS122 for a patient with no HbA1c: in the numerator because none was documented in the period."""
    head = "\n".join(headline(explain(capsys, "a1c-missing", "CMS122"), "CMS122"))
    assert "MET" in head and "no day in 2025-01-01..2025-12-31 has hba1c (counted as met)" in head


def test_json_format_carries_the_same_summary(capsys):
    """--format json: per group a summary with outcome and deciding criteria, plus the full trail."""
    data = json.loads(explain(capsys, "bp-hospice", "CMS165", "--format", "json"))
    [measure] = data["measures"]
    summary = measure["groups"][0]["summary"]
    assert summary["outcome"] == "excluded"
    assert summary["because"][0]["criterion"] == "Hospice encounter"
    assert summary["because"][0]["evidence"][0]["ref"].startswith("Encounter/")
    populations = {p["population"]: p for p in measure["groups"][0]["populations"]}
    assert (
        populations["denominator-exclusion"]["member"] is True
        and populations["denominator-exclusion"]["trail"]
    )


def test_encounter_based_measure_explains_each_episode(capsys):
    """CMS22: one result per encounter, each with its own outcome."""
    text = explain(capsys, "bp-screen-elevated", "CMS22")
    assert "met 1, not-met 1 (one result per encounter)" in text
    assert text.count("  episode Encounter/") == 2
    assert "Elevated BP with its follow-up" in text


def test_claims_codes_say_which_outcome_they_report(capsys):
    """--program mips-claims: each code says the measure outcome as of the visit and the option it took."""
    text = explain(capsys, "bp-uncontrolled", "CMS165", "--program", "mips-claims")
    assert "MIPS 236 (CMS165) not-met as of 2025-05-02: Systolic 140 or more, diastolic below 90" in text


def test_exclusions_that_did_not_apply_are_summarised_unless_full(capsys):
    """Non-applying exclusion branches get one line each; --full prints every criterion."""
    short = explain(capsys, "bp-controlled", "CMS165")
    full = explain(capsys, "bp-controlled", "CMS165", "--full")
    assert "Frailty device ordered" not in short and "Frailty device ordered" in full
