"""``--emit gaps``: one DEQM Gaps in Care Bundle per patient with an open gap (Composition, the individual
MeasureReport, a DetectedIssue per gap with its gapStatus), validated with fhir.resources R4B, and
``gaps.csv`` saying what would close each gap; the same bytes whatever the engine."""

from __future__ import annotations

import copy
import csv
import io
import json
import stat

from fhir.resources.R4B.bundle import Bundle

from fhir_cat2.cli import main
from fhir_cat2.emit.gaps import (
    BUNDLE_PROFILE,
    COMPOSITION_PROFILE,
    DETECTED_ISSUE_PROFILE,
    GAP_STATUS_EXTENSION,
    GAP_STATUS_SYSTEM,
)
from fhir_cat2.emit.ids import gaps_bundle_key, resource_id
from fhir_cat2.emit.measurereport import INDIVIDUAL_PROFILE
from fhir_cat2.emit.validation import problem_of
from fhir_cat2.job import DEFAULT_EMIT, EMIT_KINDS
from fhir_cat2.sinks.planner import business_key, plan, withdrawal

from .conftest import ROOT, bp_panel, condition, encounter, patient, run_resources

GAPS = frozenset({"gaps"})
NOW = "2026-01-15T00:00:00Z"


def hypertensive(systolic: float, diastolic: float, pid: str = "p1"):
    return [
        patient(pid, birth="1960-06-01"),
        condition(f"htn-{pid}", "I10", pid=pid, onset="2019-01-01"),
        encounter(f"e-{pid}", pid=pid),
        bp_panel(f"bp-{pid}", systolic, diastolic, "2025-10-02T09:00:00Z", pid=pid, eid=None),
    ]


def bundles(run):
    return run.sink.of("Bundle")


def test_gaps_are_asked_for_not_written_by_default(ruleset):
    assert "gaps" in EMIT_KINDS and "gaps" not in DEFAULT_EMIT
    assert bundles(run_resources(hypertensive(152, 94), ruleset, measures=("CMS165",))) == []


def test_an_open_gap_gives_a_deqm_gaps_bundle(ruleset):
    run = run_resources(hypertensive(152, 94), ruleset, measures=("CMS165",), emit=GAPS)
    (bundle,) = bundles(run)
    Bundle.model_validate(bundle)  # the full R4B model, nested resources included
    assert bundle["meta"]["profile"] == [BUNDLE_PROFILE]
    assert bundle["type"] == "document" and bundle["timestamp"] == "2025-12-31T00:00:00Z"
    assert bundle["identifier"]["value"] == gaps_bundle_key("p1", 2025)
    assert bundle["id"] == resource_id(gaps_bundle_key("p1", 2025))
    types = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert types == ["Composition", "MeasureReport", "DetectedIssue"]
    by_url = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
    assert all(url.startswith("urn:uuid:") for url in by_url)
    composition, report, issue = (entry["resource"] for entry in bundle["entry"])
    assert composition["meta"]["profile"] == [COMPOSITION_PROFILE]
    assert composition["type"]["coding"][0]["code"] == "96315-7"
    assert composition["subject"] == {"reference": "Patient/p1"} and composition["author"]
    (section,) = composition["section"]
    assert by_url[section["focus"]["reference"]] is report
    assert [by_url[e["reference"]] for e in section["entry"]] == [issue]
    assert (
        report["meta"]["profile"] == [INDIVIDUAL_PROFILE] and report["subject"]["reference"] == "Patient/p1"
    )
    assert issue["meta"]["profile"] == [DETECTED_ISSUE_PROFILE]
    assert issue["modifierExtension"] == [
        {
            "url": GAP_STATUS_EXTENSION,
            "valueCodeableConcept": {
                "coding": [{"system": GAP_STATUS_SYSTEM, "code": "open-gap", "display": "Open Gap"}]
            },
        }
    ]
    assert issue["code"]["coding"][0]["code"] == "CAREGAP"
    assert issue["patient"] == {"reference": "Patient/p1"}
    assert by_url[issue["evidence"][0]["detail"][0]["reference"]] is report
    assert issue["detail"] == (
        "CMS165: last BP 152/94 mm[Hg] on 2025-10-02 is 140/90 or above: "
        "a blood pressure reading below 140/90 by 2025-12-31 closes it"
    )


def test_a_patient_whose_gaps_are_all_closed_gets_no_bundle(ruleset):
    run = run_resources(hypertensive(128, 78), ruleset, measures=("CMS165",), emit=GAPS)
    assert run.outcome("CMS165") == "met"
    assert bundles(run) == []


def test_closed_gaps_of_a_patient_with_an_open_one_are_in_the_bundle(ruleset):
    """CMS165 closed, CMS122 open (diabetic without an HbA1c): both DetectedIssues, each with its status."""
    resources = [*hypertensive(128, 78), condition("dm", "E11.9", onset="2019-01-01")]
    run = run_resources(resources, ruleset, measures=("CMS165", "CMS122"), emit=GAPS)
    (bundle,) = bundles(run)
    statuses = [
        e["resource"]["modifierExtension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DetectedIssue"
    ]
    assert statuses == ["closed-gap", "open-gap"]
    assert len(bundle["entry"][0]["resource"]["section"]) == 2


def test_bundles_are_deterministic_and_per_patient(ruleset):
    resources = [*hypertensive(152, 94), *hypertensive(150, 92, pid="p2")]
    first = bundles(run_resources(resources, ruleset, measures=("CMS165",), emit=GAPS))
    again = bundles(run_resources(resources, ruleset, measures=("CMS165",), emit=GAPS))
    assert json.dumps(first) == json.dumps(again)
    assert len({b["id"] for b in first}) == 2


def test_validation_reaches_the_resources_inside_the_bundle(ruleset):
    (bundle,) = bundles(run_resources(hypertensive(152, 94), ruleset, measures=("CMS165",), emit=GAPS))
    assert problem_of(bundle) is None
    broken = copy.deepcopy(bundle)
    broken["entry"][2]["resource"]["status"] = ["final"]  # a list where a code goes
    assert problem_of(broken) is not None


# ---------------------------------------------------------------------------------------------- replay


def _replay(out, *extra):
    argv = ["replay", str(ROOT / "fixtures"), "--out", str(out), "--now", NOW, "--no-progress"]
    assert main([*argv, "--emit", "claim,measure-report,gaps", *extra]) == 0
    return out


def _rows(out):
    return list(csv.DictReader(io.StringIO((out / "gaps.csv").read_text())))


def test_replay_writes_bundles_and_gaps_csv(tmp_path):
    out = _replay(tmp_path / "out")
    assert stat.S_IMODE((out / "gaps.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "Bundle.ndjson").stat().st_mode) == 0o600
    header = (out / "gaps.csv").read_text().splitlines()[0]
    assert header == "patient,measure,group,episode,status,gap,what would close it,by when"
    rows = _rows(out)
    bundle_lines = (out / "Bundle.ndjson").read_bytes().splitlines()
    for line in bundle_lines:
        Bundle.model_validate_json(line)
    patients = {json.loads(line)["entry"][0]["resource"]["subject"]["reference"] for line in bundle_lines}
    assert {f"Patient/{row['patient']}" for row in rows} == patients
    assert all(row["status"] in ("open-gap", "closed-gap") for row in rows)
    assert all(
        row["what would close it"] and row["by when"] == "2025-12-31"
        for row in rows
        if row["status"] == "open-gap"
    )
    assert all(not row["what would close it"] for row in rows if row["status"] == "closed-gap")
    # fixtures/patients/bp-uncontrolled.json: the last BP day's lowest readings are 142/88
    (bp,) = [
        r for r in rows if r["patient"] == "67c81832-5f15-56f9-a409-a012160b04f8" and r["measure"] == "CMS165"
    ]
    assert bp["status"] == "open-gap"
    assert bp["what would close it"] == (
        "last BP 142/88 mm[Hg] on 2025-05-02 is 140/90 or above: "
        "a blood pressure reading below 140/90 by 2025-12-31 closes it"
    )
    # the outputs asked for before are unchanged by asking for gaps too
    plain = tmp_path / "plain"
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(plain), "--now", NOW, "--no-progress"]) == 0
    for name in ("Claim.ndjson", "MeasureReport.ndjson"):
        assert (plain / name).read_bytes() == (out / name).read_bytes()
    assert not (plain / "gaps.csv").exists() and not (plain / "Bundle.ndjson").exists()


def test_the_write_planner_knows_a_gaps_bundle_by_its_identifier(ruleset):
    """Bundle.identifier is one Identifier (not a list): the business key is still found, so a rerun plans
    no write, and a Bundle no longer wanted (all gaps closed) is withdrawn by DELETE."""
    (bundle,) = bundles(run_resources(hypertensive(152, 94), ruleset, measures=("CMS165",), emit=GAPS))
    key = gaps_bundle_key("p1", 2025)
    assert business_key(bundle) == key
    stored = {**bundle, "meta": {**bundle["meta"], "versionId": "1"}}
    assert plan([bundle], {key: stored}, strategy="update").unchanged == [("Bundle", key)]
    (write,) = plan([bundle], {}, strategy="update").writes
    assert (write.method, write.url) == ("PUT", f"Bundle/{bundle['id']}")
    gone = withdrawal(stored)
    assert gone is not None and (gone.method, gone.url) == ("DELETE", f"Bundle/{bundle['id']}")
