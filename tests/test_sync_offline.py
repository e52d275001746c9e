"""The sync command against `responses` (edge cases a real server will not produce on demand): a server
down past the retry budget, a page that repeats a resource, a resource the pipeline cannot use, bad
configuration refused before any request. The real-server tests are in tests/live/."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from fhir_cat2.cli import main
from fhir_cat2.state import SyncState

from .conftest import bp_panel, condition, encounter, patient

BASE = "https://ehr.test/fhir"
SEARCHABLE = [
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "Procedure",
    "Immunization",
    "Coverage",
    "Claim",
]


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def capability() -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}],
                "resource": [{"type": t, "interaction": [{"code": "search-type"}]} for t in SEARCHABLE],
            }
        ],
    }


class FakeServer:
    """Just enough of a FHIR server for the search side of a sync: _lastUpdated windows ignored (everything
    is new), patient= / _id= filters, optional page size, and a hook to repeat a resource on two pages."""

    def __init__(self, resources: list[dict], page_size: int = 2, repeat_first: bool = False) -> None:
        self.resources = resources
        self.page_size = page_size
        self.repeat_first = repeat_first

    def install(self, rsps: responses.RequestsMock) -> None:
        rsps.get(f"{BASE}/metadata", json=capability())
        rsps.add_callback(
            responses.GET, re.compile(re.escape(BASE) + r"/(\w+)(\?.*)?$"), callback=self.search
        )

    def search(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        parts = urlsplit(request.url)
        resource_type = parts.path.rsplit("/", 1)[-1]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if query.get("_summary") == "count":
            return (
                200,
                {},
                json.dumps(
                    {
                        "resourceType": "Bundle",
                        "type": "searchset",
                        "total": 0,
                        "meta": {"lastUpdated": "2026-01-10T10:00:00.123Z"},
                    }
                ),
            )
        matches = [r for r in self.resources if r["resourceType"] == resource_type]
        if "_id" in query:
            matches = [r for r in matches if r["id"] in query["_id"].split(",")]
        for name in ("patient", "subject", "beneficiary"):
            if name in query:
                wanted = set(query[name].split(","))
                matches = [
                    r
                    for r in matches
                    if (r.get("subject") or r.get("patient") or r.get("beneficiary") or {}).get("reference")
                    in wanted
                ]
        offset = int(query.get("_offset", 0))
        page = matches[offset : offset + self.page_size]
        if self.repeat_first and offset > 0 and matches:
            page = [matches[0], *page]  # the server shows an already-seen resource again
        bundle: dict = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in page],
        }
        if offset + self.page_size < len(matches):
            rest = {**query, "_offset": str(offset + self.page_size)}
            bundle["link"] = [
                {
                    "relation": "next",
                    "url": f"{BASE}/{resource_type}?" + "&".join(f"{k}={v}" for k, v in rest.items()),
                }
            ]
        return 200, {}, json.dumps(bundle)


def data() -> list[dict]:
    return [
        patient("p1"),
        encounter("e1", diagnoses=["c1"]),
        condition("c1", "I10"),
        bp_panel("bp1", 128, 78),
        bp_panel("bp2", 150, 95, "2025-03-04T09:20:00Z"),
        bp_panel("bp3", 126, 76, "2025-03-04T09:30:00Z"),
    ]


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
            *extra,
        ]
    )


def test_server_down_past_the_retry_budget_exits_4_and_keeps_the_watermark(
    tmp_path, capsys, sleeps, monkeypatch
):
    state = SyncState(tmp_path / "state.sqlite")
    from datetime import UTC, datetime

    mark = datetime(2026, 1, 1, tzinfo=UTC)
    state.commit_watermarks(BASE, {"Encounter": mark})
    state.close()
    monkeypatch.setenv("FHIR_CAT2_SERVER__RETRY__ATTEMPTS", "3")
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/metadata", json=capability())
        rsps.get(re.compile(re.escape(BASE) + r"/Patient.*"), status=503, headers={"Retry-After": "2"})
        code = main(
            [
                "sync",
                "--base-url",
                BASE,
                "--state",
                str(tmp_path / "state.sqlite"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert code == 4
    err = capsys.readouterr().err
    assert "server unavailable" in err and "still failing after 3 attempts" in err and "HTTP 503" in err
    assert sleeps == [2.0, 2.0]
    state = SyncState(tmp_path / "state.sqlite")
    assert state.watermarks(BASE, None) == {"Encounter": mark}  # no job's watermark moved
    state.close()


def test_a_page_that_repeats_a_resource_changes_nothing(tmp_path):
    outputs = []
    for repeat in (False, True):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            FakeServer(data(), page_size=2, repeat_first=repeat).install(rsps)
            out = tmp_path / f"r{repeat}"
            assert sync(out) == 0
        outputs.append((out / "out" / "Claim.ndjson").read_bytes())
        report = json.loads((out / "out" / "run-report.json").read_text())
        assert report["resources_used_by_type"]["Observation"] == (4 if repeat else 3)
    assert outputs[0] == outputs[1] and b"3074F" in outputs[0]  # lowest of the day: 126/76


def test_an_unusable_server_resource_is_quarantined_and_the_run_goes_on(tmp_path):
    broken = encounter("e-broken", "2025-05-05T09:00:00Z")
    del broken["status"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer([*data(), broken], page_size=50).install(rsps)
        assert sync(tmp_path) == 1
    quarantine = [
        json.loads(line) for line in (tmp_path / "out" / "quarantine.ndjson").read_text().splitlines()
    ]
    assert [q["resource"] for q in quarantine] == ["Encounter/e-broken"]
    assert "status: Field required" in quarantine[0]["reason"]
    assert quarantine[0]["file"] == f"{BASE} Encounter search page 1"
    assert (tmp_path / "out" / "Claim.ndjson").read_text().count("3074F") == 1


def test_dry_run_does_not_move_the_watermark(tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer(data()).install(rsps)
        assert sync(tmp_path) == 0
    state = SyncState(tmp_path / "state.sqlite")
    assert state.watermarks(BASE, None) == {}
    state.close()
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert report["dry_run"] is True and report["watermark_moved"] is False
    assert report["window"]["Encounter"] == {"since": None, "until": "2026-01-10T10:00:00.123Z"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "--out", "o"], "no server: give --base-url"),
        (["sync", "--base-url", "ftp://x"], "must be an http(s) URL"),
        (["sync", "--base-url", BASE, "--since", "yesterday"], "--since 'yesterday' is not a date"),
        (
            ["sync", "--base-url", BASE, "--since", "2025-02-01", "--until", "2025-01-01"],
            "--since must be before --until",
        ),
        (["sync", "--base-url", BASE, "--write-to", "nope"], "--write-to must be an http(s) URL"),
        (["record", "--base-url", BASE], "record needs --out DIR"),
    ],
)
def test_bad_configuration_exits_2_before_any_request(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with responses.RequestsMock() as rsps:  # any request would fail the test: none is registered
        assert main(args) == 2
        assert len(rsps.calls) == 0
    assert message in capsys.readouterr().err


def test_secret_in_config_file_exits_2(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"server:\n  base_url: {BASE}\n  auth:\n    type: basic\n    username: u\n    password: hunter2\n"
    )
    with responses.RequestsMock():
        assert main(["sync", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "secrets never go in the configuration file" in err and "hunter2" not in err


def test_dry_run_with_gaps_writes_the_bundles_and_gaps_csv(tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer(data()).install(rsps)
        assert (
            sync(tmp_path, "--emit", "measure-report,gaps", "--measure", "CMS165", "--measure", "CMS68") == 0
        )
    out = tmp_path / "out"
    (bundle,) = [json.loads(line) for line in (out / "Bundle.ndjson").read_text().splitlines()]
    assert bundle["entry"][0]["resource"]["subject"] == {"reference": "Patient/p1"}
    assert (out / "gaps.csv").stat().st_mode & 0o777 == 0o600
    rows = (out / "gaps.csv").read_text().splitlines()
    assert rows[1:] == [
        "p1,CMS165,650b4f94da013638e7b3dd9a,,closed-gap,a blood pressure reading below 140/90,,",
        "p1,CMS68,64f0d84a56d636294b157d7f,Encounter/e1,open-gap,current medications documented at the visit,"
        "current medications not documented at the visit: current medications documented at the visit by "
        "2025-12-31 closes it,2025-12-31",
    ]
