"""sync --source patients against `responses`, for what the live server will not do: an EHR that refuses
every search without a single ``patient`` (so the mode must never send one, not even for the clock or the
change checks), a Group whose members come in pages, and a file of ids with a line that is not an id
(refused, exit 2: see read_patients_file for why). The real-server tests are in tests/live/."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from fhir_cat2.cli import main
from fhir_cat2.state import SyncState

from .conftest import bp_panel, condition, encounter, patient
from .test_sync_offline import SEARCHABLE

BASE = "https://epic.test/fhir"
SCOPES = ("_id", "patient", "subject", "beneficiary")


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def records(pid: str) -> list[dict]:
    stored = {"lastUpdated": "2025-12-01T08:00:00.000Z"}  # before the second run's windows
    return [
        {**r, "meta": stored}
        for r in (
            patient(pid),
            encounter(f"{pid}-e1", pid=pid, diagnoses=[f"{pid}-c1"]),
            condition(f"{pid}-c1", "I10", pid=pid),
            bp_panel(f"{pid}-bp1", 128, 78, pid=pid, eid=f"{pid}-e1"),
        )
    ]


class PatientOnlyServer:
    """Refuses (HTTP 400, as Epic does) every search that does not name exactly one patient."""

    def __init__(self, patients: list[str], *, everything: bool = False, group_pages: int = 1) -> None:
        self.resources = [r for p in patients for r in records(p)]
        self.patients = patients
        self.everything = everything
        self.group_pages = group_pages
        self.seen: list[str] = []
        self.refused: list[str] = []

    def install(self, rsps: responses.RequestsMock) -> None:
        resource = [{"type": t, "interaction": [{"code": "search-type"}]} for t in SEARCHABLE]
        if self.everything:
            resource[0]["operation"] = [{"name": "everything", "definition": "x"}]
        rsps.get(
            f"{BASE}/metadata",
            json={
                "resourceType": "CapabilityStatement",
                "fhirVersion": "4.0.1",
                "rest": [{"mode": "server", "resource": resource}],
            },
            headers={"Date": "Sat, 10 Jan 2026 10:00:00 GMT"},
        )
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/(?!metadata).*"), callback=self.get)

    def get(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        assert request.url is not None
        self.seen.append(request.url)
        parts = urlsplit(request.url)
        path = parts.path.removeprefix(urlsplit(BASE).path).strip("/")
        query = {k: v for k, v in parse_qs(parts.query).items()}
        if path.startswith("Group/"):
            return self.group(int(query.get("page", ["1"])[0]))
        if path.endswith("/$everything"):
            pid = path.split("/")[1]
            return self.bundle([r for r in self.resources if _owner(r) == pid])
        scope = [(k, v) for k, vs in query.items() for v in vs if k in SCOPES]
        if len(scope) != 1 or "," in scope[0][1]:
            self.refused.append(request.url)
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "required", "diagnostics": "patient required"}],
            }
            return 400, {}, json.dumps(outcome)
        pid = scope[0][1].removeprefix("Patient/")
        matches = [r for r in self.resources if r["resourceType"] == path and _owner(r) == pid]
        if "_lastUpdated" in query:
            matches = []  # nothing changed since the last run
        return self.bundle(matches)

    def group(self, page: int) -> tuple[int, dict, str]:
        members = [{"entity": {"reference": f"Patient/{p}"}} for p in self.patients]
        members.append({"entity": {"reference": "Practitioner/doc"}})  # not a patient: left out
        size = -(-len(members) // self.group_pages)
        group = {"resourceType": "Group", "id": "g1", "type": "person", "actual": True}
        if self.group_pages == 1:
            return 200, {}, json.dumps({**group, "member": members})
        chunk = members[(page - 1) * size : page * size]
        bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
        bundle["entry"] = [{"resource": {**group, "member": chunk}}]
        if page < self.group_pages:
            bundle["link"] = [{"relation": "next", "url": f"{BASE}/Group/g1?page={page + 1}"}]
        return 200, {}, json.dumps(bundle)

    @staticmethod
    def bundle(resources: list[dict]) -> tuple[int, dict, str]:
        entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
        return 200, {}, json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries})


def _owner(resource: dict) -> str:
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    return str(resource["subject"]["reference"]).removeprefix("Patient/")


def sync(tmp_path, *extra: str) -> int:
    return main(
        [
            "sync",
            "--base-url",
            BASE,
            "--state",
            str(tmp_path / "state.sqlite"),
            "--out",
            str(tmp_path / "out"),
            "--period",
            "2025",
            "--dry-run",
            "--source",
            "patients",
            *extra,
        ]
    )


def report(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "run-report.json").read_text())


@pytest.mark.parametrize("everything", [False, True])
def test_a_server_that_refuses_searches_without_a_patient_never_sees_one(tmp_path, everything, capsys):
    server = PatientOnlyServer(["p1", "p2", "p3"], everything=everything)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server.install(rsps)
        assert sync(tmp_path, "--group", "g1") == 0
        first = report(tmp_path)
        assert first["patient_reads"]["fetched"] == 3
        assert (tmp_path / "out" / "Claim.ndjson").read_text().count("3074F") == 3
        # as if that run had completed: the next one checks each patient for changes in its windows
        state = SyncState(tmp_path / "state.sqlite")
        until = datetime(2026, 1, 10, 10, tzinfo=UTC)
        state.commit_watermarks(BASE, dict.fromkeys(first["window"], until), "r1", first["job"])
        state.note(f"patients_members {BASE} {first['job']}", json.dumps(["p1", "p2", "p3"]))
        state.close()
        server.seen.clear()
        assert sync(tmp_path, "--group", "g1") == 0
    second = report(tmp_path)
    assert second["patient_reads"] == {"members": 3, "new": 0, "resumed": 0, "checked": 3, "fetched": 0}
    assert isinstance(second["patients"], int)  # the patients evaluated, as in every run report
    assert server.refused == []
    if everything:  # one $everything?_since= per patient (this server ignores _since: filtered here)
        assert sorted(server.seen) == [
            f"{BASE}/Group/g1",
            f"{BASE}/Patient/p1/$everything?_since=2026-01-10T09%3A55%3A00.000Z&_count=200",
            f"{BASE}/Patient/p2/$everything?_since=2026-01-10T09%3A55%3A00.000Z&_count=200",
            f"{BASE}/Patient/p3/$everything?_since=2026-01-10T09%3A55%3A00.000Z&_count=200",
            f"{BASE}/Patient?_id=p1&_summary=count",  # the clock, from a search for one member
        ]
    else:  # every read type, for each patient, one at a time
        changes = [u for u in server.seen if "_lastUpdated" in u]
        assert len(changes) == 3 * len(first["window"])
        assert all(re.search(r"[?&](_id|patient|subject|beneficiary)=[^&,]+(&|$)", u) for u in changes)
    assert "p1" not in capsys.readouterr().err  # ids are counted, never logged


def test_everything_is_used_where_the_capability_statement_lists_it(tmp_path):
    for listed in (False, True):
        server = PatientOnlyServer(["p1", "p2"], everything=listed)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            server.install(rsps)
            assert sync(tmp_path / str(listed), "--group", "g1") == 0
        assert sum("$everything" in u for u in server.seen) == (2 if listed else 0)
        assert server.refused == []
        claims = (tmp_path / str(listed) / "out" / "Claim.ndjson").read_text()
        assert claims.count("3074F") == 2


def test_a_group_whose_members_come_in_pages(tmp_path):
    server = PatientOnlyServer([f"p{n}" for n in range(1, 8)], group_pages=3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server.install(rsps)
        assert sync(tmp_path, "--group", "g1") == 0
    assert [u for u in server.seen if "/Group/" in u] == [
        f"{BASE}/Group/g1",
        f"{BASE}/Group/g1?page=2",
        f"{BASE}/Group/g1?page=3",
    ]
    assert report(tmp_path)["patient_reads"]["members"] == 7
    assert (tmp_path / "out" / "Claim.ndjson").read_text().count("3074F") == 7


def test_a_patients_file(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# quality population\np2\n\nPatient/p1\np2\n")
    server = PatientOnlyServer(["p1", "p2", "p3"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server.install(rsps)
        assert sync(tmp_path, "--patients-file", str(ids)) == 0
    assert not any("/Group/" in u for u in server.seen)
    assert report(tmp_path)["patient_reads"]["members"] == 2
    assert not any("p3" in u for u in server.seen)


def test_a_bad_id_in_the_file_refuses_the_run_before_any_request(tmp_path, capsys):
    """Refused, not quarantined: the file is configuration somebody wrote; running without that patient
    would leave them out of the population without anybody noticing. The message names the line, never its
    text (it may be an MRN or a name pasted by mistake)."""
    ids = tmp_path / "ids.txt"
    ids.write_text("p1\nSmith, John 1960-01-01\np2\n")
    with responses.RequestsMock() as rsps:  # any request would fail the test
        assert sync(tmp_path, "--patients-file", str(ids)) == 2
        assert len(rsps.calls) == 0
    err = capsys.readouterr().err
    assert "line 2 is not a patient id" in err and "Smith" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "give one of --group ID"),
        (("--group", "g1", "--patients-file", "x"), "give one of --group ID"),
    ],
)
def test_patients_mode_needs_a_group_or_a_file(tmp_path, capsys, extra, message):
    with responses.RequestsMock():
        assert sync(tmp_path, *extra) == 2
    assert message in capsys.readouterr().err


def test_group_without_patients_mode_is_refused(tmp_path, capsys):
    args = ["sync", "--base-url", BASE, "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    assert main([*args, "--group", "g1"]) == 2
    assert "--group needs --source patients or --source bulk" in capsys.readouterr().err
    assert main([*args, "--patients-file", "ids.txt"]) == 2
    assert "--patients-file needs --source patients" in capsys.readouterr().err


def config_check(tmp_path, capsys, source: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"server:\n  base_url: {BASE}\nsource:\n{source}"
        f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/out\n"
    )
    code = main(["config", "check", str(path), "--dry-run"])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("everything", [False, True])
def test_config_check_reads_the_group_and_searches_for_one_patient(tmp_path, capsys, everything):
    server = PatientOnlyServer(["p1", "p2", "p3"], everything=everything, group_pages=2)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server.install(rsps)
        code, out = config_check(tmp_path, capsys, "  mode: patients\n  group: g1\n")
    assert code == 0, out
    assert server.refused == []  # no search without a patient, here either
    assert "server: Group/g1: 3 patients in 2 page(s); 1 other members left out" in out
    assert "server: search Observation for one patient (patient=) with the credentials" in out
    assert "server: search Patient for one patient (_id=) with the credentials" in out
    used = "Patient/$everything" if everything else "one search per type"
    assert f"patients are read with {used} (source.patients.everything: auto)" in out
    assert "p1" not in out  # the patient searched for is not named


def test_config_check_refuses_a_bad_patients_file_before_contacting_the_server(tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("p1\nnot an id\n")
    with responses.RequestsMock() as rsps:
        code, out = config_check(tmp_path, capsys, f"  mode: patients\n  patients_file: {ids}\n")
        assert len(rsps.calls) == 0
    assert code == 2
    assert f"source.patients_file: {ids}: line 2 is not a patient id" in out
    assert "the server was not contacted" in out


def test_config_check_with_a_patients_file(tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("p2\np1\n")
    server = PatientOnlyServer(["p1", "p2"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server.install(rsps)
        code, out = config_check(tmp_path, capsys, f"  mode: patients\n  patients_file: {ids}\n")
    assert code == 0, out
    assert f"source.patients_file: 2 patients in {ids}" in out
    assert not any("/Group/" in u for u in server.seen) and server.refused == []
    assert any("patient=Patient%2Fp1" in u or "patient=Patient/p1" in u for u in server.seen)
