"""sync --source bulk against a real server (sekmet's $export): the write-back equals a search sync's and
replay's, at system and Group level; a rerun writes nothing; an amended Observation in a _since export
updates exactly its Claim; a run stopped while the export runs resumes it without a second kick-off; Ctrl-C
cancels the export on the server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_cat2.cli import main
from fhir_cat2.fhir import FhirClient
from fhir_cat2.runs import EXIT_EXPORT_TIMEOUT, EXIT_INTERRUPTED
from fhir_cat2.sources.bulk import BulkExport, Deletion
from fhir_cat2.sources.records import Src
from fhir_cat2.state import SyncState
from tests.support.fault_proxy import FaultProxy

from ..conftest import ROOT
from .conftest import EXTERNAL, LiveServer, fixture_patient_ids, load_fixtures
from .test_sync_live import RUN, assert_server_equals_replay, fixture_writebacks, replayed  # noqa: F401

pytestmark = pytest.mark.live

GROUP_ID = "fhir-cat2-bulk-sync"
FAST = {"FHIR_CAT2_SOURCE__BULK__POLL_SECONDS": "0.2"}


@pytest.fixture
def fresh(fhir_server: LiveServer, monkeypatch) -> LiveServer:
    fhir_server.delete_ours()
    load_fixtures(fhir_server)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    return fhir_server


def sync(
    server: LiveServer | FaultProxy, tmp_path: Path, *extra: str, out: str = "out"
) -> tuple[int, dict[str, Any]]:
    folder = tmp_path / out
    code = main(
        [
            "sync",
            "--base-url",
            server.base_url,
            "--state",
            str(tmp_path / "state.sqlite"),
            "--out",
            str(folder),
            *RUN,
            *extra,
        ]
    )
    return code, json.loads((folder / "run-report.json").read_text())


def versions(server: LiveServer) -> dict[str, str]:
    return {r["id"]: r["meta"]["versionId"] for t in fixture_writebacks(server).values() for r in t.values()}


def test_a_system_bulk_sync_writes_what_search_and_replay_write_and_a_rerun_writes_nothing(
    fresh, replayed, tmp_path, capsys
):
    code, report = sync(fresh, tmp_path, "--source", "bulk")
    assert code == 0, capsys.readouterr().err
    claims, reports = len(replayed["Claim"]), len(replayed["MeasureReport"])
    assert report["source"] == "bulk" and report["bulk_export"]["level"] == "system"
    assert report["bulk_export"]["incremental"] is False and report["bulk_export"]["resumed"] is False
    seconds = report["bulk_export"]["seconds"]
    assert set(seconds) == {"export", "download", "after_last_byte"} and min(seconds.values()) >= 0
    assert sum(seconds.values()) <= report["duration_seconds"]
    assert report["write_back"]["Claim"]["created"] == claims
    assert report["write_back"]["MeasureReport"]["created"] == reports
    assert report["watermark_moved"] is True
    assert_server_equals_replay(fresh, replayed)
    # the watermark is the export's transactionTime, not our clock
    marks = set(report["watermark"]["after"].values())
    assert marks == {report["bulk_export"]["transaction_time"]}
    before = versions(fresh)

    # a search sync of the same data, as a new job (another state file), finds everything already there
    code, searched = sync(fresh, tmp_path / "search")
    assert code == 0
    assert searched["write_back"] == {"Claim": {"unchanged": claims}, "MeasureReport": {"unchanged": reports}}

    code, again = sync(fresh, tmp_path, "--source", "bulk")
    assert code == 0
    assert again["bulk_export"]["incremental"] is True
    assert again["write_back"] == {}  # nothing changed since the last export: no patient to evaluate
    assert again["patients_affected"] == 0
    assert versions(fresh) == before


def test_a_group_bulk_sync_writes_what_search_writes_for_the_members(fresh, tmp_path, capsys):
    members = sorted(fixture_patient_ids())
    fresh.put(
        {
            "resourceType": "Group",
            "id": GROUP_ID,
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in members],
        }
    )
    code, _ = sync(fresh, tmp_path / "search", "--dry-run")
    assert code == 0
    code, grouped = sync(fresh, tmp_path / "bulk", "--dry-run", "--source", "bulk", "--group", GROUP_ID)
    assert code == 0, capsys.readouterr().err
    assert grouped["bulk_export"]["level"] == "group"
    for name in ("Claim.ndjson", "MeasureReport.ndjson"):
        bulk_out = (tmp_path / "bulk" / "out" / name).read_text().splitlines()
        search_out = [
            line
            for line in (tmp_path / "search" / "out" / name).read_text().splitlines()
            if any(f"Patient/{pid}" in line for pid in members)
        ]
        assert bulk_out and sorted(bulk_out) == sorted(search_out), name


def test_an_amended_observation_in_a_since_export_updates_exactly_its_claim(fresh, replayed, tmp_path):
    assert sync(fresh, tmp_path, "--source", "bulk")[0] == 0
    before = fixture_writebacks(fresh)
    bundle = json.loads((ROOT / "fixtures" / "patients" / "bp-controlled.json").read_text())
    first = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    reading = fresh.get(f"Observation/{first['id']}")
    reading.pop("meta")
    amended = json.loads(json.dumps(reading))
    amended["status"] = "amended"
    next(c for c in amended["component"] if c["code"]["coding"][0]["code"] == "8480-6")["valueQuantity"][
        "value"
    ] = 136
    fresh.put(amended)

    code, report = sync(fresh, tmp_path, "--source", "bulk")
    assert code == 0
    assert report["bulk_export"]["incremental"] is True
    assert report["changed_by_type"] == {"Observation": 1}
    assert report["patients_affected"] == 1
    assert report["write_back"]["Claim"] == {
        "updated": 1,
        "unchanged": report["write_back"]["Claim"]["unchanged"],
    }
    assert report["write_back"].get("MeasureReport", {}).get("updated", 0) == 0
    after = fixture_writebacks(fresh)
    changed = [i for i in after["Claim"] if after["Claim"][i]["meta"] != before["Claim"][i]["meta"]]
    assert len(changed) == 1 and set(after["Claim"]) == set(before["Claim"])
    codes = [i["productOrService"]["coding"][0]["code"] for i in after["Claim"][changed[0]]["item"]]
    assert "3075F" in codes and "3074F" not in codes
    assert all(
        after["MeasureReport"][i]["meta"] == before["MeasureReport"][i]["meta"]
        for i in before["MeasureReport"]
    )


STATUS = r"^/fhir/bulk-status/"
KICK_OFF = r"\$export"
needs_plain_http = pytest.mark.skipif(
    bool(EXTERNAL) and not EXTERNAL.startswith("http://"), reason="the proxy speaks plain HTTP"
)


@pytest.fixture
def proxy(fresh: LiveServer):
    with FaultProxy(fresh.base_url) as fault_proxy:
        yield fault_proxy


def kick_offs(proxy: FaultProxy) -> int:
    return sum(1 for seen in proxy.seen if seen.method == "GET" and "$export" in seen.target)


def noted_export(tmp_path: Path) -> dict[str, Any] | None:
    state = SyncState(str(tmp_path / "state.sqlite"))
    try:
        rows = state._db.execute("SELECT value FROM meta WHERE key LIKE 'note:bulk_export %'").fetchall()
    finally:
        state.close()
    return json.loads(rows[0][0]) if rows else None


@needs_plain_http
def test_an_export_still_running_at_the_wait_limit_exits_7_and_the_next_run_resumes_it(
    proxy, fresh, replayed, tmp_path, monkeypatch
):
    proxy.add("status", method="GET", path=STATUS, status=202, retry_after="0", times=None)
    monkeypatch.setenv("FHIR_CAT2_SOURCE__BULK__MAX_WAIT_MINUTES", "0.01")
    code, report = sync(proxy, tmp_path, "--source", "bulk")
    assert code == EXIT_EXPORT_TIMEOUT
    assert report["exit_meaning"].startswith("bulk export still running")
    noted = noted_export(tmp_path)
    assert noted is not None and "/bulk-status/" in noted["status_url"]
    assert kick_offs(proxy) == 1

    proxy.clear()
    monkeypatch.delenv("FHIR_CAT2_SOURCE__BULK__MAX_WAIT_MINUTES")
    code, report = sync(proxy, tmp_path, "--source", "bulk")
    assert code == 0
    assert report["bulk_export"]["resumed"] is True
    assert kick_offs(proxy) == 0  # the same export, polled again
    assert report["write_back"]["Claim"]["created"] == len(replayed["Claim"])
    assert_server_equals_replay(fresh, replayed)
    assert noted_export(tmp_path) is None  # used up: the next run starts a new export


@needs_plain_http
def test_ctrl_c_while_the_export_runs_cancels_it_on_the_server(proxy, fresh, tmp_path, monkeypatch):
    proxy.add("status", method="GET", path=STATUS, status=202, retry_after="0", times=None)
    cancelled: list[str] = []
    original_poll, original_cancel = BulkExport.poll, BulkExport.cancel

    def interrupted_poll(self: BulkExport, job: Any) -> Any:
        raise KeyboardInterrupt

    def cancel(self: BulkExport, status_url: str) -> bool:
        cancelled.append(status_url)
        return original_cancel(self, status_url)

    monkeypatch.setattr(BulkExport, "poll", interrupted_poll)
    monkeypatch.setattr(BulkExport, "cancel", cancel)
    code, _ = sync(proxy, tmp_path, "--source", "bulk")
    assert code == EXIT_INTERRUPTED
    assert len(cancelled) == 1
    assert [s.method for s in proxy.seen if s.method == "DELETE"] == ["DELETE"]
    assert noted_export(tmp_path) is None
    proxy.clear()
    monkeypatch.setattr(BulkExport, "poll", original_poll)
    # cancelled on the server: its status URL is gone
    client = FhirClient(proxy.base_url)
    try:
        assert BulkExport(client).cancel(cancelled[0]) is False
    finally:
        client.close()


@needs_plain_http
def test_keep_export_leaves_it_running_for_the_next_run(proxy, fresh, tmp_path, monkeypatch):
    monkeypatch.setattr(BulkExport, "poll", lambda self, job: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _ = sync(proxy, tmp_path, "--source", "bulk", "--keep-export")
    assert code == EXIT_INTERRUPTED
    assert not [s for s in proxy.seen if s.method == "DELETE"]
    assert noted_export(tmp_path) is not None


@needs_plain_http
def test_a_run_killed_while_polling_resumes_the_export_without_a_second_kick_off(
    proxy, fresh, replayed, tmp_path
):
    proxy.add("status", method="GET", path=STATUS, status=202, retry_after="1", times=None)
    args = ["sync", "--base-url", proxy.base_url, "--state", str(tmp_path / "state.sqlite")]
    args += ["--out", str(tmp_path / "killed"), "--source", "bulk", *RUN]
    process = subprocess.Popen([sys.executable, "-m", "fhir_cat2", *args], env={**os.environ, **FAST})
    try:
        deadline = time.monotonic() + 60
        while noted_export(tmp_path) is None or not any("bulk-status" in s.target for s in proxy.seen):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert kick_offs(proxy) == 1
    proxy.clear()

    code, report = sync(proxy, tmp_path, "--source", "bulk")
    assert code == 0
    assert report["bulk_export"]["resumed"] is True and kick_offs(proxy) == 0
    assert_server_equals_replay(fresh, replayed)


def test_a_deleted_encounter_in_a_since_export_withdraws_our_claim_for_it(fresh, tmp_path, monkeypatch):
    assert sync(fresh, tmp_path, "--source", "bulk")[0] == 0
    claims = fixture_writebacks(fresh)["Claim"]
    claim = next(c for c in claims.values() if c["status"] == "active")
    encounter = claim["item"][0]["encounter"][0]["reference"]
    response = requests.delete(f"{fresh.base_url}/{encounter}", timeout=30)
    assert response.status_code in (200, 204), response.text[:300]
    original = BulkExport.download

    def with_deletion(self: BulkExport, manifest: Any, **kwargs: Any) -> Iterator[Any]:
        yield from original(self, manifest, **kwargs)
        yield Deletion(encounter, Src("/deleted.ndjson", "line 1 entry[0]"))  # sekmet lists no deletions

    monkeypatch.setattr(BulkExport, "download", with_deletion)
    code, report = sync(fresh, tmp_path, "--source", "bulk")
    assert code == 0
    assert report["bulk_export"]["deleted"] == {"Encounter": 1}
    assert report["patients_affected"] == 1
    assert report["write_back"]["Claim"].get("withdrawn") == 1
    after = fixture_writebacks(fresh)["Claim"]
    assert after[claim["id"]]["status"] == "cancelled"
    assert all(after[i]["meta"] == c["meta"] for i, c in claims.items() if i != claim["id"])


FILES = r"^/fhir/bulk-files/"


@needs_plain_http
def test_a_run_killed_mid_download_resumes_without_a_kick_off_or_a_file_downloaded_twice(
    proxy, fresh, replayed, tmp_path
):
    proxy.add("delay", method="GET", path=FILES, seconds=60, after=1)  # the second file hangs
    args = ["sync", "--base-url", proxy.base_url, "--state", str(tmp_path / "state.sqlite")]
    args += ["--out", str(tmp_path / "killed"), "--source", "bulk", *RUN]
    env = {**os.environ, **FAST, "FHIR_CAT2_SOURCE__BULK__CONCURRENCY": "1"}
    process = subprocess.Popen([sys.executable, "-m", "fhir_cat2", *args], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (noted_export(tmp_path) or {}).get("files_done"):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    first = next(s.target for s in proxy.seen if re.search(FILES, s.target))
    assert kick_offs(proxy) == 1
    proxy.clear()

    code, report = sync(proxy, tmp_path, "--source", "bulk")
    assert code == 0
    assert report["bulk_export"]["resumed"] is True and kick_offs(proxy) == 0
    downloaded = [s.target for s in proxy.seen if re.search(FILES, s.target)]
    assert downloaded and first not in downloaded
    assert report["bulk_export"]["files_reused"] == 1
    assert_server_equals_replay(fresh, replayed)
    assert not (tmp_path / "state.sqlite.bulk").exists() or not any(
        (tmp_path / "state.sqlite.bulk").rglob("*")
    )
