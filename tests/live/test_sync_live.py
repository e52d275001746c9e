"""sync against a real FHIR server: the write-back equals replay, a rerun writes nothing, an amended
Observation updates exactly its Claim in place, a killed run plus a rerun leaves exactly a clean run's
resources, record then replay is identical, and an unreachable server stops with exit 4."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main
from fhir_cat2.sinks.planner import comparable
from fhir_cat2.state import SyncState

from ..conftest import ROOT
from .conftest import LiveServer, fixture_patient_ids, load_fixtures, read_ndjson

pytestmark = pytest.mark.live

RUN = ["--period", "2025", "--now", "2026-01-15T00:00:00Z"]


@pytest.fixture
def fresh(fhir_server: LiveServer) -> LiveServer:
    """Clinical fixtures as shipped, and none of our write-backs, on the server."""
    fhir_server.delete_ours()
    load_fixtures(fhir_server)
    return fhir_server


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> dict[str, dict[str, dict[str, Any]]]:
    """What replay writes for fixtures/: {type: {id: resource}}."""
    out = tmp_path_factory.mktemp("replay")
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(out), *RUN]) == 0
    return {t: {r["id"]: r for r in read_ndjson(out / f"{t}.ndjson")} for t in ("Claim", "MeasureReport")}


def sync(server: LiveServer, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    code = main(
        [
            "sync",
            "--base-url",
            server.base_url,
            "--state",
            str(tmp_path / "state.sqlite"),
            "--out",
            str(out),
            *RUN,
            *extra,
        ]
    )
    return code, json.loads((out / "run-report.json").read_text())


def fixture_writebacks(server: LiveServer) -> dict[str, dict[str, dict[str, Any]]]:
    """Our write-backs for the fixture patients, by type and id."""
    patients = fixture_patient_ids()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for resource_type, element in (("Claim", "patient"), ("MeasureReport", "subject")):
        out[resource_type] = {
            r["id"]: r
            for r in server.ours(resource_type)
            if r[element]["reference"].removeprefix("Patient/") in patients
        }
    return out


def assert_server_equals_replay(server: LiveServer, replayed: dict[str, dict[str, dict[str, Any]]]) -> None:
    on_server = fixture_writebacks(server)
    for resource_type, expected in replayed.items():
        assert set(on_server[resource_type]) == set(expected), resource_type
        for resource_id, resource in expected.items():
            assert comparable(on_server[resource_type][resource_id]) == comparable(resource), resource_id
        identifiers = [r["identifier"][0]["value"] for r in on_server[resource_type].values()]
        assert len(identifiers) == len(set(identifiers)), "duplicate business identifiers"


def test_sync_writes_what_replay_writes_and_a_rerun_writes_nothing(fresh, replayed, tmp_path, capsys):
    code, report = sync(fresh, tmp_path)
    assert code == 0, capsys.readouterr().err
    claims, reports = len(replayed["Claim"]), len(replayed["MeasureReport"])
    assert claims > 10 and reports > 10
    assert report["write_back"]["Claim"]["created"] == claims
    assert report["write_back"]["MeasureReport"]["created"] == reports
    assert report["watermark_moved"] is True
    assert_server_equals_replay(fresh, replayed)
    versions = {
        r["id"]: r["meta"]["versionId"] for t in fixture_writebacks(fresh).values() for r in t.values()
    }

    code, again = sync(fresh, tmp_path)
    assert code == 0
    assert again["write_back"] == {"Claim": {"unchanged": claims}, "MeasureReport": {"unchanged": reports}}
    assert {
        r["id"]: r["meta"]["versionId"] for t in fixture_writebacks(fresh).values() for r in t.values()
    } == versions
    expected = f"written back: Claims: {claims} unchanged; MeasureReports: {reports} unchanged"
    assert expected in capsys.readouterr().err


def test_amended_observation_updates_exactly_the_affected_claim_in_place(fresh, replayed, tmp_path):
    assert sync(fresh, tmp_path)[0] == 0
    before = fixture_writebacks(fresh)
    bundle = json.loads((ROOT / "fixtures" / "patients" / "bp-controlled.json").read_text())
    first = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    reading = fresh.get(f"Observation/{first['id']}")  # as stored: references resolved by the server
    reading.pop("meta")
    systolic = next(c for c in reading["component"] if c["code"]["coding"][0]["code"] == "8480-6")
    assert systolic["valueQuantity"]["value"] == 128  # 3074F before the amendment
    amended = json.loads(json.dumps(reading))
    amended["status"] = "amended"
    next(c for c in amended["component"] if c["code"]["coding"][0]["code"] == "8480-6")["valueQuantity"][
        "value"
    ] = 136
    fresh.put(amended)

    code, report = sync(fresh, tmp_path)
    assert code == 0
    assert report["patients_affected"] >= 1
    assert report["write_back"]["Claim"].get("updated") == 1
    assert report["write_back"]["Claim"].get("created", 0) == 0
    assert report["write_back"].get("MeasureReport", {}).get("updated", 0) == 0
    after = fixture_writebacks(fresh)
    changed = [
        i
        for i in after["Claim"]
        if after["Claim"][i]["meta"]["versionId"] != before["Claim"][i]["meta"]["versionId"]
    ]
    assert len(changed) == 1 and set(after["Claim"]) == set(before["Claim"])  # in place: no second copy
    claim = after["Claim"][changed[0]]
    assert int(claim["meta"]["versionId"]) == int(before["Claim"][changed[0]]["meta"]["versionId"]) + 1
    codes = [i["productOrService"]["coding"][0]["code"] for i in claim["item"]]
    assert "3075F" in codes and "3074F" not in codes
    assert all(
        after["MeasureReport"][i]["meta"] == before["MeasureReport"][i]["meta"]
        for i in before["MeasureReport"]
    )


KILLABLE = """
import sys, time
import fhir_cat2.sinks.server as server_sink
original = server_sink.ServerSink._send_bundle
def slowly(self, chunk):
    original(self, chunk)
    print("bundle-sent", flush=True)
    time.sleep(0.4)
server_sink.ServerSink._send_bundle = slowly
from fhir_cat2.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_mid_write_and_rerun_leaves_exactly_a_clean_runs_resources(fresh, replayed, tmp_path):
    args = [
        "sync",
        "--base-url",
        fresh.base_url,
        "--state",
        str(tmp_path / "state.sqlite"),
        "--out",
        str(tmp_path / "killed"),
        *RUN,
    ]
    env = {**os.environ, "FHIR_CAT2_WRITE__BUNDLE_SIZE": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    sent = 0
    deadline = time.monotonic() + 60
    while sent < 2 and time.monotonic() < deadline:
        if process.stdout.readline().strip() == b"bundle-sent":
            sent += 1
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    partial = sum(len(v) for v in fixture_writebacks(fresh).values())
    expected = sum(len(v) for v in replayed.values())
    assert 0 < partial < expected, "the kill did not land mid-write"
    state = SyncState(tmp_path / "state.sqlite")
    assert state.watermarks(fresh.base_url, None) == {}  # the killed run did not move the bookmarks
    state.close()

    code, report = sync(fresh, tmp_path)
    assert code == 0
    written = report["write_back"]
    assert sum(c.get("created", 0) for c in written.values()) == expected - partial
    assert sum(c.get("unchanged", 0) for c in written.values()) == partial
    assert_server_equals_replay(fresh, replayed)


def test_record_then_replay_gives_identical_output(fresh, tmp_path):
    recording = tmp_path / "recording"
    assert main(["record", "--base-url", fresh.base_url, "--out", str(recording), *RUN]) == 0
    assert list((recording / "pages").glob("*.json")) and (recording / "recording.yaml").exists()
    assert main(["replay", str(recording), "--out", str(tmp_path / "from-recording"), *RUN]) == 0
    assert (
        main(
            [
                "sync",
                "--base-url",
                fresh.base_url,
                "--state",
                str(tmp_path / "s.sqlite"),
                "--dry-run",
                "--out",
                str(tmp_path / "dry"),
                *RUN,
            ]
        )
        == 0
    )
    for name in ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson"):
        assert (tmp_path / "from-recording" / name).read_bytes() == (tmp_path / "dry" / name).read_bytes(), (
            name
        )
    if fresh.sekmet is not None:  # on a server with other data the recording holds more patients
        assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "fixtures"), *RUN]) == 0
        for name in ("Claim.ndjson", "MeasureReport.ndjson"):
            assert (tmp_path / "from-recording" / name).read_bytes() == (
                tmp_path / "fixtures" / name
            ).read_bytes(), name


def test_dry_run_writes_nothing_to_the_server(fresh, replayed, tmp_path):
    code, report = sync(fresh, tmp_path, "--dry-run")
    counts = {"Claim": len(replayed["Claim"]), "MeasureReport": len(replayed["MeasureReport"])}
    assert code == 0 and report["written"] == counts
    assert (tmp_path / "out" / "Claim.ndjson").exists()
    assert fixture_writebacks(fresh) == {"Claim": {}, "MeasureReport": {}}


def test_backfill_does_not_move_the_watermark(fresh, replayed, tmp_path):
    code, report = sync(fresh, tmp_path, "--since", "2000-01-01")
    assert code == 0 and report["backfill"] is True and report["watermark_moved"] is False
    assert report["write_back"]["Claim"]["created"] == len(replayed["Claim"])
    state = SyncState(tmp_path / "state.sqlite")
    assert state.watermarks(fresh.base_url, None) == {}
    state.close()


def test_incremental_window_after_a_completed_run(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_CAT2_SYNC__OVERLAP_MINUTES", "0")
    assert sync(fresh, tmp_path)[0] == 0
    state = SyncState(tmp_path / "state.sqlite")
    marks = state.watermarks(fresh.base_url, None)
    state.close()
    assert set(marks) >= {"Patient", "Encounter", "Observation", "Condition"}
    code, report = sync(fresh, tmp_path)  # nothing clinical changed since: nobody to recompute
    assert code == 0 and report["patients_affected"] == 0 and report["written"] == {}
    assert report["window"]["Encounter"]["since"] is not None


def test_a_second_job_on_the_same_state_file_reads_everything(fresh, tmp_path, monkeypatch):
    """hedis and mips-claims on one server and state file: each job keeps its own watermarks, so the second
    job's first run reads every patient (not only those changed since the first job ran)."""
    monkeypatch.setenv("FHIR_CAT2_SYNC__OVERLAP_MINUTES", "0")
    try:
        code, hedis = sync(fresh, tmp_path)
        assert code == 0 and hedis["watermark_moved"] is True
        code, mips = sync(fresh, tmp_path, "--program", "mips-claims")
        assert code == 0 and mips["job"] != hedis["job"]
        assert mips["window"]["Encounter"]["since"] is None  # a full read, not hedis' bookmark
        assert mips["patients_affected"] == hedis["patients_affected"] > 0
        assert mips["write_back"]["Claim"].get("created", 0) > 0  # its own claims, for every patient
        code, again = sync(fresh, tmp_path)  # hedis again: its own bookmark, nothing changed since
        assert code == 0 and again["job"] == hedis["job"] and again["patients_affected"] == 0
        assert again["window"]["Encounter"]["since"] is not None
    finally:
        fresh.delete_ours()


def test_conditional_create_strategy_for_claims(fresh, replayed, tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_CAT2_WRITE__STRATEGY", "conditional-create")
    expected = len(replayed["Claim"])
    try:
        code, report = sync(fresh, tmp_path, "--emit", "claim")
        assert code == 0 and report["write_back"] == {"Claim": {"created": expected}}
        claims = fixture_writebacks(fresh)["Claim"]
        assert len(claims) == expected and not any(
            i.startswith("cat2-") for i in claims
        )  # the server chose the ids
        code, again = sync(fresh, tmp_path, "--emit", "claim")
        assert code == 0 and again["write_back"] == {"Claim": {"unchanged": expected}}
        assert len(fixture_writebacks(fresh)["Claim"]) == expected
    finally:
        fresh.delete_ours()


def test_unreachable_server_exits_4_and_keeps_the_watermark(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FHIR_CAT2_SERVER__RETRY__ATTEMPTS", "2")
    monkeypatch.setenv("FHIR_CAT2_SERVER__RETRY__BACKOFF_BASE", "0.01")
    base = f"http://127.0.0.1:{port}/fhir"
    state = SyncState(tmp_path / "state.sqlite")
    from datetime import UTC, datetime

    state.commit_watermarks(base, {"Encounter": datetime(2026, 1, 1, tzinfo=UTC)})
    state.close()
    code = main(
        ["sync", "--base-url", base, "--state", str(tmp_path / "state.sqlite"), "--out", str(tmp_path / "o")]
    )
    assert code == 4
    assert "server unavailable" in capsys.readouterr().err
    state = SyncState(tmp_path / "state.sqlite")
    assert list(state.watermarks(base, None).values()) == [datetime(2026, 1, 1, tzinfo=UTC)]
    state.close()


@pytest.mark.skipif(
    bool(os.environ.get("FHIR_CAT2_TEST_BASE_URL")), reason="starts a second sekmet as the target"
)
def test_write_to_another_server(fresh, replayed, tmp_path):
    from tests.support.sekmet_server import SekmetServer

    with SekmetServer() as target:
        code, report = sync(fresh, tmp_path, "--write-to", target.base_url)
        assert code == 0 and report["write_target"] == target.base_url
        other = LiveServer(target.base_url, target)
        assert {r["id"] for r in other.ours("Claim")} == set(replayed["Claim"])
        assert {r["id"] for r in other.ours("MeasureReport")} == set(replayed["MeasureReport"])
    assert fixture_writebacks(fresh) == {"Claim": {}, "MeasureReport": {}}  # nothing went to the source


def test_keyset_scan_paging_gives_the_same_result(fresh, replayed, tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_CAT2_SYNC__SCAN_PAGING", "keyset")
    monkeypatch.setenv("FHIR_CAT2_SERVER__PAGE_SIZE", "4")
    code, report = sync(fresh, tmp_path)
    assert code == 0 and report["patients_affected"] >= len(fixture_patient_ids())
    assert_server_equals_replay(fresh, replayed)
