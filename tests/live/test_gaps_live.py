"""sync --emit gaps against a real FHIR server: the Gaps in Care Bundles written back equal replay's, a rerun
writes none of them again, and a reading that closes a gap updates exactly that patient's Bundle in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main
from fhir_cat2.sinks.planner import comparable

from ..conftest import ROOT, bp_panel
from .conftest import LiveServer, fixture_patient_ids, load_fixtures, read_ndjson

pytestmark = pytest.mark.live

RUN = ["--period", "2025", "--now", "2026-01-15T00:00:00Z", "--emit", "claim,measure-report,gaps"]
BP_UNCONTROLLED = "67c81832-5f15-56f9-a409-a012160b04f8"  # fixtures/patients/bp-uncontrolled.json


@pytest.fixture
def fresh(fhir_server: LiveServer) -> LiveServer:
    fhir_server.delete_ours()
    load_fixtures(fhir_server)
    return fhir_server


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """The Gaps in Care Bundles replay writes for fixtures/, by id."""
    out = tmp_path_factory.mktemp("replay")
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(out), *RUN]) == 0
    return {r["id"]: r for r in read_ndjson(out / "Bundle.ndjson")}


def sync(server: LiveServer, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    argv = [
        "sync",
        "--base-url",
        server.base_url,
        "--state",
        str(tmp_path / "state.sqlite"),
        "--out",
        str(out),
    ]
    code = main([*argv, *RUN, *extra])
    return code, json.loads((out / "run-report.json").read_text())


def gaps_bundles(server: LiveServer) -> dict[str, dict[str, Any]]:
    patients = fixture_patient_ids()
    return {
        b["id"]: b
        for b in server.ours("Bundle")
        if b["entry"][0]["resource"]["subject"]["reference"].removeprefix("Patient/") in patients
    }


def bp_status(bundle: dict[str, Any]) -> str:
    for entry in bundle["entry"]:
        issue = entry["resource"]
        if issue["resourceType"] == "DetectedIssue" and issue["detail"].startswith("CMS165:"):
            return str(issue["modifierExtension"][0]["valueCodeableConcept"]["coding"][0]["code"])
    raise AssertionError("no CMS165 gap in the Bundle")


def test_sync_writes_replays_gaps_bundles_and_a_rerun_writes_none(fresh, replayed, tmp_path, capsys):
    code, report = sync(fresh, tmp_path)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "failed" not in err  # each Bundle is written on its own, never refused inside a transaction
    assert len(replayed) >= 10
    assert report["write_back"]["Bundle"] == {"created": len(replayed)}
    on_server = gaps_bundles(fresh)
    assert set(on_server) == set(replayed)
    for bundle_id, bundle in replayed.items():
        assert comparable(on_server[bundle_id]) == comparable(bundle), bundle_id
    versions = {i: b["meta"]["versionId"] for i, b in on_server.items()}

    code, again = sync(fresh, tmp_path)
    assert code == 0
    assert again["write_back"]["Bundle"] == {"unchanged": len(replayed)}
    assert {i: b["meta"]["versionId"] for i, b in gaps_bundles(fresh).items()} == versions


def test_a_reading_that_closes_a_gap_updates_that_patients_bundle_in_place(fresh, replayed, tmp_path):
    assert sync(fresh, tmp_path)[0] == 0
    before = gaps_bundles(fresh)
    (mine,) = [
        i
        for i, b in before.items()
        if b["entry"][0]["resource"]["subject"]["reference"].endswith(BP_UNCONTROLLED)
    ]
    assert bp_status(before[mine]) == "open-gap"
    reading = bp_panel("gaps-live-bp", 124, 76, "2025-11-25T09:00:00Z", pid=BP_UNCONTROLLED, eid=None)
    fresh.put(reading)
    try:
        code, report = sync(fresh, tmp_path)
        assert code == 0
        assert report["write_back"]["Bundle"] == {"unchanged": len(before) - 1, "updated": 1}
        after = gaps_bundles(fresh)
        assert set(after) == set(before)  # in place: no second copy
        assert bp_status(after[mine]) == "closed-gap"
        assert int(after[mine]["meta"]["versionId"]) == int(before[mine]["meta"]["versionId"]) + 1
        assert all(after[i]["meta"] == before[i]["meta"] for i in before if i != mine)
    finally:
        fresh.transaction([{"request": {"method": "DELETE", "url": "Observation/gaps-live-bp"}}])


def test_a_patient_whose_last_open_gap_closes_has_their_bundle_withdrawn(fresh, tmp_path):
    """Only CMS165: the BP reading closes the patient's one open gap, so their Bundle is deleted."""
    assert sync(fresh, tmp_path, "--measure", "CMS165")[0] == 0
    before = gaps_bundles(fresh)
    (mine,) = [
        i
        for i, b in before.items()
        if b["entry"][0]["resource"]["subject"]["reference"].endswith(BP_UNCONTROLLED)
    ]
    fresh.put(bp_panel("gaps-live-bp", 124, 76, "2025-11-25T09:00:00Z", pid=BP_UNCONTROLLED, eid=None))
    try:
        code, report = sync(fresh, tmp_path, "--measure", "CMS165")
        assert code == 0
        assert report["write_back"]["Bundle"].get("withdrawn") == 1
        assert set(gaps_bundles(fresh)) == set(before) - {mine}
    finally:
        fresh.transaction([{"request": {"method": "DELETE", "url": "Observation/gaps-live-bp"}}])
