"""sync --source patients against a real FHIR server, with a Group of the fixture patients on it: it writes
exactly what a search-mode sync writes (through $everything and through plain searches), a rerun writes
nothing, an amended Observation re-reads and re-evaluates only its patient, and a run killed half-way
resumes without fetching again the patients it had read."""

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
from fhir_cat2.sources.patients import PatientSource
from fhir_cat2.state import SyncState

from ..conftest import ROOT
from .conftest import LiveServer, fixture_patient_ids, load_fixtures
from .test_sync_live import RUN, assert_server_equals_replay, fixture_writebacks, replayed, sync

pytestmark = pytest.mark.live

__all__ = ["replayed"]  # the module fixture, shared with test_sync_live

GROUP = "fhir-cat2-test-population"


@pytest.fixture
def fresh(fhir_server: LiveServer) -> LiveServer:
    """Clinical fixtures as shipped, a Group of the fixture patients, and none of our write-backs."""
    fhir_server.delete_ours()
    load_fixtures(fhir_server)
    members = [{"entity": {"reference": f"Patient/{p}"}} for p in sorted(fixture_patient_ids())]
    fhir_server.put(
        {"resourceType": "Group", "id": GROUP, "type": "person", "actual": True, "member": members}
    )
    return fhir_server


@pytest.fixture
def no_overlap(monkeypatch) -> None:
    """No overlap window: a rerun reads as changed only what changed after the last run."""
    monkeypatch.setenv("FHIR_CAT2_SYNC__OVERLAP_MINUTES", "0")


@pytest.fixture
def fetched(monkeypatch) -> list[tuple[str, bool]]:
    """(patient, read whole) for every patient the run looked at, in the order the runs handed them on."""
    seen: list[tuple[str, bool]] = []
    original = PatientSource.fetch

    def spy(self: PatientSource, patient_id: str, windows: Any) -> Any:
        result = original(self, patient_id, windows)
        seen.append((patient_id, result.resources is not None))
        return result

    monkeypatch.setattr(PatientSource, "fetch", spy)
    return seen


@pytest.fixture
def everything_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    original = PatientSource._everything

    def spy(self: PatientSource, patient_id: str, since: str | None = None) -> Any:
        calls.append(patient_id)
        return original(self, patient_id, since)

    monkeypatch.setattr(PatientSource, "_everything", spy)
    return calls


def patients_sync(server: LiveServer, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    return sync(server, tmp_path, "--source", "patients", "--group", GROUP, *extra)


@pytest.mark.parametrize("everything", ["auto", "never"])
def test_patients_mode_writes_what_search_mode_writes_and_a_rerun_writes_nothing(
    fresh, replayed, tmp_path, monkeypatch, everything_calls, everything, capsys, no_overlap
):
    monkeypatch.setenv("FHIR_CAT2_SOURCE__PATIENTS__EVERYTHING", everything)
    code, report = patients_sync(fresh, tmp_path / "patients")
    assert code == 0, capsys.readouterr().err
    members = len(fixture_patient_ids())
    assert report["patient_reads"] == {
        "members": members,
        "new": members,
        "resumed": 0,
        "checked": 0,
        "fetched": members,
    }
    # sekmet lists Patient/$everything: auto uses it for every patient, never does not use it at all
    assert len(everything_calls) == (members if everything == "auto" else 0)
    assert report["watermark_moved"] is True
    by_patients = fixture_writebacks(fresh)
    assert_server_equals_replay(fresh, replayed)

    code, again = patients_sync(fresh, tmp_path / "patients")
    assert code == 0
    # every patient checked for changes, none changed: nothing read whole, nothing to write
    assert again["patient_reads"]["checked"] == members and again["patient_reads"]["fetched"] == 0
    assert again["write_back"] == {} and again["patients_affected"] == 0

    fresh.delete_ours()  # the same patients through search mode, from nothing
    code, _ = sync(fresh, tmp_path / "search")
    assert code == 0
    by_search = fixture_writebacks(fresh)
    for resource_type, resources in by_search.items():
        assert set(by_patients[resource_type]) == set(resources), resource_type
        for resource_id, resource in resources.items():
            assert comparable(by_patients[resource_type][resource_id]) == comparable(resource), resource_id
    err = capsys.readouterr().err
    assert not any(p in err for p in fixture_patient_ids())  # patient ids are counted, never logged


@pytest.mark.parametrize("everything", ["auto", "never"])
def test_an_amended_observation_rereads_and_reevaluates_only_its_patient(
    fresh, tmp_path, fetched, no_overlap, everything, monkeypatch
):
    # auto: changes from one Patient/$everything?_since= per patient; never: one search per type
    monkeypatch.setenv("FHIR_CAT2_SOURCE__PATIENTS__EVERYTHING", everything)
    assert patients_sync(fresh, tmp_path)[0] == 0
    before = fixture_writebacks(fresh)
    fetched.clear()
    bundle = json.loads((ROOT / "fixtures" / "patients" / "bp-controlled.json").read_text())
    first = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    reading = fresh.get(f"Observation/{first['id']}")
    reading.pop("meta")
    systolic = next(c for c in reading["component"] if c["code"]["coding"][0]["code"] == "8480-6")
    systolic["valueQuantity"]["value"] = 136
    reading["status"] = "amended"
    fresh.put(reading)
    owner = reading["subject"]["reference"].removeprefix("Patient/")

    code, report = patients_sync(fresh, tmp_path)
    assert code == 0
    assert [p for p, whole in fetched if whole] == [owner]  # the others were only checked for changes
    assert sorted(p for p, _ in fetched) == sorted(fixture_patient_ids())
    assert report["patients_affected"] == 1 and report["patient_reads"]["fetched"] == 1
    assert report["changed_by_type"] == {"Observation": 1}
    assert report["write_back"]["Claim"].get("updated") == 1  # its other Claim is unchanged
    assert report["write_back"]["Claim"].get("created", 0) == 0
    after = fixture_writebacks(fresh)
    changed = [i for i in after["Claim"] if after["Claim"][i]["meta"] != before["Claim"][i]["meta"]]
    assert len(changed) == 1 and after["Claim"][changed[0]]["patient"]["reference"] == f"Patient/{owner}"


KILLABLE = """
import sys, time
from fhir_cat2.state import SyncState
original = SyncState.spool_patient
def slowly(self, *args):
    original(self, *args)
    print("patient-read", flush=True)
    time.sleep(0.3)
SyncState.spool_patient = slowly
from fhir_cat2.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("everything", ["always", "never"])
def test_a_run_killed_half_way_resumes_without_reading_its_patients_again(
    fresh, replayed, tmp_path, fetched, everything, monkeypatch
):
    state_path = tmp_path / "state.sqlite"
    args = ["sync", "--base-url", fresh.base_url, "--state", str(state_path), "--out", str(tmp_path / "k")]
    args += ["--source", "patients", "--group", GROUP, *RUN]
    env = {**os.environ, "FHIR_CAT2_SOURCE__PATIENTS__EVERYTHING": everything}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    read = 0
    deadline = time.monotonic() + 60
    while read < 5 and time.monotonic() < deadline:
        if process.stdout.readline().strip() == b"patient-read":
            read += 1
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    state = SyncState(state_path)
    done = set(state.spooled_patients(fresh.base_url, next(iter(_jobs(state)))))
    assert state.watermarks(fresh.base_url, None) == {}
    state.close()
    assert 5 <= len(done) < len(fixture_patient_ids()), "the kill did not land half-way"
    assert fixture_writebacks(fresh) == {"Claim": {}, "MeasureReport": {}}  # nothing written yet

    monkeypatch.setenv("FHIR_CAT2_SOURCE__PATIENTS__EVERYTHING", everything)
    code, report = patients_sync(fresh, tmp_path)
    assert code == 0
    assert not done & {p for p, _ in fetched}  # not fetched again
    assert done | {p for p, _ in fetched} == fixture_patient_ids()
    assert report["patient_reads"]["resumed"] == len(done)
    assert report["patient_reads"]["fetched"] == len(fixture_patient_ids()) - len(done)
    assert report["watermark_moved"] is True
    assert_server_equals_replay(fresh, replayed)
    state = SyncState(state_path)
    assert state.spooled_patients(fresh.base_url, next(iter(_jobs(state)))) == set()  # spent with the run
    state.close()


def _jobs(state: SyncState) -> set[str]:
    return {str(row[0]) for row in state._db.execute("SELECT DISTINCT job FROM patient_spool")} or {
        str(row[0]) for row in state._db.execute("SELECT DISTINCT job FROM watermark")
    }


def test_config_check_reads_the_group_and_searches_for_one_patient(fresh, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"server:\n  base_url: {fresh.base_url}\nsource:\n  mode: patients\n  group: {GROUP}\n"
        f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/out\n"
    )
    code = main(["config", "check", str(path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"server: Group/{GROUP}: {len(fixture_patient_ids())} patients in 1 page(s)" in out
    assert "patients are read with Patient/$everything (source.patients.everything: auto)" in out
    assert "server: search Observation for one patient (patient=) with the credentials" in out
