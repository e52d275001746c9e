"""Every measure of the catalogue writes MeasureReports of the shape of its published Measure.

The published Measure resources (../shared/reference/ecqm-content/measures) are compared with what fhir-cat2
writes on the generated patients of tests/oracle (all of them, run once with ``report="both"``: an individual
report is written exactly for each patient reaching a measure's initial population, and one summary report per
measure): canonical ``url|version``, group ids in order, each group's population codes and ids, stratifier ids
and codes (also in every stratum), scoring and improvement notation, in the individual and the summary
reports, each shape validated with fhir.resources R4B. The summary counts must be the sums of the individual
reports' counts, and ``fhir-cat2 explain`` must name every group.

What we write differently from the published Measure for a good reason is in ``ALLOWED``, with the reason.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_cat2.catalogue import catalogue
from fhir_cat2.cli import main
from fhir_cat2.explain import outcome_to_json, outcome_to_text
from fhir_cat2.pipeline import PatientOutcome
from fhir_cat2.rules.loader import RuleSet, load_rules

from .conftest import run_resources, shared_path
from .oracle.cases import PERIOD, all_cases, bundle

MEASURES = [entry.id for entry in catalogue(load_rules().table) if entry.name]
"""Every catalogue measure with a published Measure (a claims-only measure writes no MeasureReport)."""

MULTI_GROUP = [m.id for m in load_rules().table.measures if m.url and len(m.groups) > 1]

ALLOWED: dict[tuple[str, str], str] = {
    ("CMS165", "stratifiers"): "the Measure lists two stratifiers (863b910a-..., 33cce73e-...) with a"
    " criteria of no expression, and the CQL (ControllingHighBloodPressureFHIR 0.1.000) defines no"
    " stratification: there is nothing to count in them, so the reports have no stratifier",
    ("CMS1056", "improvement notation"): "the Measure's coding contradicts itself (code 'decrease', display"
    " 'increase') and the QPP 2025 measures data lists MIPS 494 as not inverse; the numerator is the"
    " patients with an out-of-range CT scan (the Measure's description: 'a percentage of patients with CT"
    " exams that are out-of-range'), so a lower score is better: decrease, as cms1056.yaml says",
}
"""(measure, aspect) -> why the reports differ from the published Measure there. Aspects: 'stratifiers',
'improvement notation'."""

IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
CQFM = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition"
DEQM_SCORING = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-measureScoring"
CONSISTENT_DISPLAY = {
    "increase": "Increased score indicates improvement",
    "decrease": "Decreased score indicates improvement",
}


@dataclass
class Written:
    """What fhir-cat2 wrote for one measure on all the generated patients."""

    individual: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[PatientOutcome] = field(default_factory=list)
    """Outcomes of patients with an individual report (in the measure's initial population)."""


@pytest.fixture(scope="module")
def published() -> dict[str, dict[str, Any]]:
    """Canonical url -> the published Measure resource."""
    folder = shared_path("reference", "ecqm-content", "measures")
    measures = [json.loads(path.read_text()) for path in sorted(folder.glob("Measure-*.json"))]
    return {measure["url"]: measure for measure in measures}


@pytest.fixture(scope="module")
def qpp_inverse() -> dict[str, bool]:
    """MIPS number -> isInverse, from CMS's QPP measures data."""
    path = shared_path("reference", "cms-qpp", "2025_measures-data.json")
    return {
        m["measureId"]: bool(m.get("isInverse"))
        for m in json.loads(path.read_text())
        if m.get("category") == "quality"
    }


@pytest.fixture(scope="module")
def written(ruleset: RuleSet) -> dict[str, Written]:
    """CMS id -> its reports, from one run of every generated case (built once for the module)."""
    run = run_resources(
        [r for made in all_cases() for r in made.resources],
        ruleset,
        period=PERIOD,
        report="both",
        emit=frozenset({"measure-report"}),
    )
    by_url = {f"{m.url}|{m.version}": m.id for m in ruleset.table.measures if m.url}
    out: dict[str, Written] = defaultdict(Written)
    reported: dict[str, set[str]] = defaultdict(set)
    for report in run.reports:
        measure = by_url[report["measure"]]
        if report["type"] == "summary":
            out[measure].summary.append(report)
        else:
            out[measure].individual.append(report)
            reported[measure].add(report["subject"]["reference"].removeprefix("Patient/"))
    for outcome in run.outcomes:
        for measure, patients in reported.items():
            if outcome.ctx.patient_id in patients:
                out[measure].outcomes.append(outcome)
    return dict(out)


def _mine(written: dict[str, Written], measure: str) -> Written:
    mine = written.get(measure, Written())
    assert mine.individual, f"{measure}: no generated case reaches its initial population (tests/oracle)"
    assert len(mine.summary) == 1, f"{measure}: {len(mine.summary)} summary reports"
    return mine


def _code(concept: dict[str, Any] | None) -> str | None:
    return concept["coding"][0]["code"] if concept else None


def _populations(entries: list[dict[str, Any]]) -> list[tuple[str | None, str | None]]:
    return sorted((_code(p.get("code")), p.get("id")) for p in entries)


def _shape(group: dict[str, Any]) -> dict[str, Any]:
    """A group's shape, as the Measure and the MeasureReport both spell it."""
    return {
        "id": group.get("id"),
        "populations": _populations(group.get("population", [])),
        "stratifiers": [(s.get("id"), _code(s.get("code"))) for s in group.get("stratifier", [])],
    }


def _published_shape(measure_id: str, measure: dict[str, Any]) -> list[dict[str, Any]]:
    shapes = [_shape(group) for group in measure["group"]]
    if (measure_id, "stratifiers") in ALLOWED:
        for shape in shapes:
            shape["stratifiers"] = []
    return shapes


def _reports(mine: Written) -> list[dict[str, Any]]:
    return [*mine.summary, *mine.individual]


@pytest.mark.parametrize("measure_id", MEASURES)
def test_reports_name_the_published_measure(ruleset, published, written, measure_id):
    """measure = the Measure's url|version; scoring = the Measure's (and every group's cqfm-scoring)."""
    definition = ruleset.measure(measure_id)
    assert definition.url in published, f"{measure_id}: no published Measure at {definition.url}"
    measure = published[definition.url]
    scoring = {_code(measure["scoring"])} | {
        _code(e["valueCodeableConcept"])
        for group in measure["group"]
        for e in group.get("extension", [])
        if e["url"] == f"{CQFM}/cqfm-scoring"
    }
    assert len(scoring) == 1
    for report in _reports(_mine(written, measure_id)):
        assert report["measure"] == f"{measure['url']}|{measure['version']}"
        [ours] = [e for e in report["extension"] if e["url"] == DEQM_SCORING]
        assert {_code(ours["valueCodeableConcept"])} == scoring


@pytest.mark.parametrize("measure_id", MEASURES)
def test_improvement_notation_is_the_published_one(ruleset, published, qpp_inverse, written, measure_id):
    """Each group's cqfm-improvementNotation, where its code and display agree; where they contradict each
    other (code 'decrease', display 'increase': the MADiE export bug of this release, domain.md §2.2) the
    Measure does not say, and the QPP measures data's isInverse for the MIPS number decides."""
    definition = ruleset.measure(measure_id)
    measure = published[definition.url]
    expected = set()
    for group in measure["group"]:
        for extension in group.get("extension", []):
            if extension["url"] != f"{CQFM}/cqfm-improvementNotation":
                continue
            coding = extension["valueCodeableConcept"]["coding"][0]
            if coding["display"] == CONSISTENT_DISPLAY[coding["code"]]:
                expected.add(coding["code"])
            else:
                expected.add("decrease" if qpp_inverse[definition.mips or ""] else "increase")
    if (measure_id, "improvement notation") in ALLOWED:
        expected = {"increase", "decrease"} - expected
    assert len(expected) == 1, f"{measure_id}: the Measure's groups disagree: {expected}"
    for report in _reports(_mine(written, measure_id)):
        coding = report["improvementNotation"]["coding"][0]
        assert (coding["system"], coding["code"]) == (IMPROVEMENT_SYSTEM, *expected)
        assert coding["display"] == CONSISTENT_DISPLAY[coding["code"]]


@pytest.mark.parametrize("measure_id", MEASURES)
def test_groups_populations_and_stratifiers_are_the_published_ones(ruleset, published, written, measure_id):
    """Group ids in order, population codes and ids, stratifier ids and codes, and each stratum's
    populations, in the summary and in every individual report; each shape validates as an R4B
    MeasureReport (one report per distinct set of counts)."""
    measure = published[ruleset.measure(measure_id).url]
    expected = _published_shape(measure_id, measure)
    validated: set[str] = set()
    for report in _reports(_mine(written, measure_id)):
        assert [_shape(group) for group in report["group"]] == expected, report["type"]
        for group in report["group"]:
            codes = [_code(p["code"]) for p in group["population"]]
            assert len(codes) == len(set(codes)), f"a population twice in group {group['id']}"
            for stratifier in group.get("stratifier", []):
                for stratum in stratifier["stratum"]:
                    assert _populations(stratum["population"]) == _populations(group["population"])
        counts = json.dumps([report["type"], _counts(report)], sort_keys=True)
        if counts not in validated:
            validated.add(counts)
            MeasureReport.model_validate(report)


def _counts(report: dict[str, Any]) -> Counter[str]:
    """'<group id> <population code>' and '<group id> <stratifier id> <population code>' -> count."""
    counts: Counter[str] = Counter()
    for group in report["group"]:
        for population in group["population"]:
            counts[f"{group['id']} {_code(population['code'])}"] += population.get("count", 0)
        for stratifier in group.get("stratifier", []):
            for stratum in stratifier["stratum"]:
                for population in stratum["population"]:
                    key = f"{group['id']} {stratifier['id']} {_code(population['code'])}"
                    counts[key] += population.get("count", 0)
    return counts


@pytest.mark.parametrize("measure_id", MEASURES)
def test_summary_counts_are_the_sum_of_the_individual_reports(written, measure_id):
    """Per group, population and stratum; and the cases reach every group's initial population, so the sums
    are of something."""
    mine = _mine(written, measure_id)
    total: Counter[str] = Counter()
    for report in mine.individual:
        total.update(_counts(report))
    summary = _counts(mine.summary[0])
    assert +summary == +total
    assert summary.keys() >= total.keys()
    unreached = [
        group["id"] for group in mine.summary[0]["group"] if total[f"{group['id']} initial-population"] == 0
    ]
    assert not unreached, f"no generated case reaches the initial population of group(s) {unreached}"


@pytest.mark.parametrize("measure_id", MEASURES)
def test_explain_names_every_group(ruleset, published, written, measure_id):
    """The explanation (as ``fhir-cat2 explain`` prints it) of a patient in the initial population names
    the measure, and, as JSON, every group by the Measure's id; as text too when there are several."""
    group_ids = [group["id"] for group in published[ruleset.measure(measure_id).url]["group"]]
    outcome = _mine(written, measure_id).outcomes[0]
    data = outcome_to_json(outcome, ruleset, [measure_id])
    [explained] = data["measures"]
    assert [group["id"] for group in explained["groups"]] == group_ids
    for episode in explained.get("episodes", []):
        assert [group["id"] for group in episode["groups"]] == group_ids
    text = outcome_to_text(outcome, ruleset, [measure_id])
    assert f"\n{measure_id} " in text
    if len(group_ids) > 1:
        for index, group_id in enumerate(group_ids, start=1):
            assert f"group {index} ({group_id}" in text


@pytest.mark.parametrize("measure_id", MULTI_GROUP)
def test_the_explain_command_names_every_group(
    ruleset, published, written, measure_id, tmp_path: Path, capsys
):
    """``fhir-cat2 explain`` itself, for the measures of several groups (episode-based ones too)."""
    patient = _mine(written, measure_id).outcomes[0].ctx.patient_id
    [made] = [made for made in all_cases() if made.name == patient]
    (tmp_path / "p.json").write_text(json.dumps(bundle(made)))
    argv = ["explain", str(tmp_path), "--patient", patient, "--measure", measure_id, "--period", str(PERIOD)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for index, group in enumerate(published[ruleset.measure(measure_id).url]["group"], start=1):
        assert f"group {index} ({group['id']}" in text
