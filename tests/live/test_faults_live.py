"""Faults between fhir-cat2 and a real FHIR server, injected by a proxy (tests/support/fault_proxy.py):
dropped connections, delays beyond the read timeout, bursts of 503 and 429, bodies cut mid-page, responses
lost after the server processed a write.

Under each fault a run either completes with exactly a clean run's output, or stops with exit 4 (the
watermark kept, the run recorded as failed), or, when writes fail, keeps them in the outbox and exits 6
(test_outbox_live.py); and the next run, without the fault, ends with exactly the
resources a clean run writes: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main
from fhir_cat2.state import SyncState
from tests.support.fault_proxy import FaultProxy

from .conftest import EXTERNAL, LiveServer
from .test_sync_live import RUN, assert_server_equals_replay, fixture_writebacks, fresh, replayed  # noqa: F401

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(EXTERNAL) and not EXTERNAL.startswith("http://"), reason="the proxy speaks plain HTTP"
    ),
]

SCAN_PAGE_2 = r"^/fhir/Observation\?_lastUpdated=[^ ]*_offset=4"
CONTEXT = r"^/fhir/Observation\?patient="
CONTEXT_PAGE_2 = r"^/fhir/Observation\?patient=[^ ]*_offset=4"
WRITE = r"^/fhir/?$"
READ_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def proxy(fhir_server: LiveServer):
    with FaultProxy(fhir_server.base_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def faulty(proxy, fresh, monkeypatch):
    """The proxy without faults, the fixtures loaded, short retry waits and timeouts, small pages."""
    proxy.clear()
    for name, value in {
        "SERVER__RETRY__ATTEMPTS": "3",
        "SERVER__RETRY__BACKOFF_BASE": "0.05",
        "SERVER__RETRY__BACKOFF_MAX": "0.2",
        "SERVER__RETRY__RETRY_AFTER_CAP": "2",
        "SERVER__TIMEOUT__READ": str(READ_TIMEOUT),
        "SERVER__PAGE_SIZE": "4",
        "WRITE__BUNDLE_SIZE": "5",
    }.items():
        monkeypatch.setenv(f"FHIR_CAT2_{name}", value)
    yield proxy
    proxy.clear()


def sync(proxy: FaultProxy, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    code = main(
        [
            "sync",
            "--base-url",
            proxy.base_url,
            "--state",
            str(tmp_path / "state.sqlite"),
            "--out",
            str(out),
            *RUN,
        ]
    )
    return code, json.loads((out / "run-report.json").read_text())


def last_run(tmp_path: Path) -> dict[str, Any]:
    state = SyncState(tmp_path / "state.sqlite")
    try:
        return state.runs(limit=1)[0]
    finally:
        state.close()


def watermarks(tmp_path: Path, base_url: str) -> dict[str, Any]:
    state = SyncState(tmp_path / "state.sqlite")
    try:
        return state.watermarks(base_url, None)
    finally:
        state.close()


TRANSIENT = {
    "dropped connection on a change-scan page": dict(kind="drop", method="GET", path=SCAN_PAGE_2),
    "read timeout on a context search": dict(
        kind="delay", method="GET", path=CONTEXT, seconds=READ_TIMEOUT + 1
    ),
    "two 503s on a transaction": dict(kind="status", method="POST", path=WRITE, status=503, times=2),
    "two 429s with Retry-After": dict(
        kind="status", method="GET", path=CONTEXT, status=429, retry_after="1", times=2
    ),
    "body truncated mid-page": dict(kind="truncate", method="GET", path=CONTEXT_PAGE_2),
    "complete response with half a body": dict(kind="cut_json", method="GET", path=SCAN_PAGE_2),
    "transaction processed, response lost": dict(kind="drop_after", method="POST", path=WRITE, after=1),
    "transaction processed, response too late": dict(
        kind="delay_after", method="POST", path=WRITE, seconds=READ_TIMEOUT + 1, after=2
    ),
}


@pytest.mark.parametrize("fault", list(TRANSIENT.values()), ids=list(TRANSIENT))
def test_a_transient_fault_is_retried_and_the_run_writes_exactly_a_clean_runs_resources(
    faulty,
    replayed,
    tmp_path,
    fault,
):
    injected = faulty.add(**fault)
    started = time.monotonic()
    code, report = sync(faulty, tmp_path)
    elapsed = time.monotonic() - started
    assert injected.hits == (fault.get("times") or 1), "the fault never fired: the test proves nothing"
    assert code == 0, report.get("error")
    assert report["status"] == "completed" and report["retries"] >= injected.hits
    assert report["watermark_moved"] is True
    if fault.get("retry_after"):
        assert elapsed >= 2.0, "Retry-After: 1 was not honoured"
    assert_server_equals_replay(faulty_server(faulty), replayed)
    code, again = sync(faulty, tmp_path)  # and a rerun finds nothing to do
    assert code == 0 and all(set(c) == {"unchanged"} for c in again["write_back"].values()), again[
        "write_back"
    ]


# (A write target that goes away in the middle of the write-back does not stop the run: its writes wait in
# the outbox, exit 6; see test_outbox_live.py.)
PERSISTENT = {
    "connections dropped on every context search": dict(kind="drop", method="GET", path=CONTEXT, times=None),
    "every change-scan page cut mid-body": dict(kind="truncate", method="GET", path=SCAN_PAGE_2, times=None),
}


@pytest.mark.parametrize("fault", list(PERSISTENT.values()), ids=list(PERSISTENT))
def test_a_persistent_fault_exits_4_and_the_next_run_completes_without_loss_or_duplicates(
    faulty,
    replayed,
    tmp_path,
    fault,
    capsys,
):
    faulty.add(**fault)
    code, report = sync(faulty, tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4, report.get("error")
    assert (
        report["status"] == "failed" and report["exit_code"] == 4 and "server unavailable" in report["error"]
    )
    assert err[-1].startswith("fhir-cat2 sync: failed (exit 4") and "watermark kept" in err[-1]
    assert watermarks(tmp_path, faulty.base_url) == {}  # the bookmarks did not move
    record = last_run(tmp_path)
    assert record["status"] == "failed" and record["exit_code"] == 4

    faulty.clear()
    code, report = sync(faulty, tmp_path)
    assert code == 0 and report["watermark_moved"] is True
    assert_server_equals_replay(faulty_server(faulty), replayed)
    assert last_run(tmp_path)["status"] == "completed"


def test_conditional_create_survives_a_lost_response_without_a_duplicate(
    faulty, replayed, tmp_path, monkeypatch
):
    """A POST with If-None-Exist that the server processed but whose answer was lost is sent again: the
    server must find the first one instead of creating a second."""
    monkeypatch.setenv("FHIR_CAT2_WRITE__STRATEGY", "conditional-create")
    faulty.add(kind="drop_after", method="POST", path=WRITE, after=1)
    try:
        out = tmp_path / "out"
        args = [
            "sync",
            "--base-url",
            faulty.base_url,
            "--state",
            str(tmp_path / "s.sqlite"),
            "--out",
            str(out),
        ]
        code = main([*args, *RUN, "--emit", "claim"])
        assert code == 0
        claims = fixture_writebacks(faulty_server(faulty))["Claim"]
        keys = [c["identifier"][0]["value"] for c in claims.values()]
        assert len(keys) == len(set(keys)) == len(replayed["Claim"])
    finally:
        faulty_server(faulty).delete_ours()


def faulty_server(proxy: FaultProxy) -> LiveServer:
    """The server behind the proxy, for checks that must not go through faults."""
    return LiveServer(f"http://{proxy.upstream_host}:{proxy.upstream_port}{proxy.base_path}", None)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_debug_sync_through_faults_logs_no_patient_data(faulty, tmp_path, log_format, caplog, capsys):
    """Retries, timeouts and write-back warnings at DEBUG: still no name, birth date or identifier value."""
    import logging

    from tests.support.phi import collect, leaks

    from ..conftest import ROOT

    phi = collect([ROOT / "fixtures"])
    faulty.add(kind="status", method="GET", path=CONTEXT, status=503, times=1)
    faulty.add(kind="truncate", method="GET", path=SCAN_PAGE_2)
    faulty.add(kind="drop_after", method="POST", path=WRITE)
    caplog.set_level(logging.DEBUG)
    argv = ["--log-level", "DEBUG", "--log-format", log_format, "sync", "--base-url", faulty.base_url]
    code = main([*argv, "--state", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "o"), *RUN])
    assert code == 0
    assert len(caplog.records) > 50 and any("retry" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert not leaks(record.getMessage() + repr(record.args), phi), record.getMessage()
    for line in capsys.readouterr().err.splitlines():
        assert not leaks(line, phi), line
        assert (
            "?" not in line.split("fhir-cat2 sync:")[0] or "<redacted>" in line
        )  # no search URL in a log line


def test_sync_reports_and_metrics_carry_retries_writes_and_watermarks(faulty, tmp_path, replayed):
    from prometheus_client.parser import text_string_to_metric_families

    metrics = tmp_path / "fhir-cat2-sync.prom"
    faulty.add(kind="status", method="GET", path=CONTEXT, status=503, times=1)
    out, state = str(tmp_path / "out"), str(tmp_path / "state.sqlite")
    argv = [
        "sync",
        "--base-url",
        faulty.base_url,
        "--state",
        state,
        "--out",
        out,
        "--metrics-file",
        str(metrics),
    ]
    assert main([*argv, *RUN]) == 0
    first = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert first["watermark"]["before"] == {} and set(first["watermark"]["after"]) >= {
        "Encounter",
        "Observation",
    }
    claims, reports = len(replayed["Claim"]), len(replayed["MeasureReport"])
    assert first["retries"] == 1 and first["write_back"]["Claim"] == {"created": claims}
    assert main([*argv, *RUN]) == 0
    second = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert second["watermark"]["before"] == first["watermark"]["after"]
    assert second["unchanged"] == {"Claim": claims, "MeasureReport": reports}
    samples = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "job_name"))): s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
    }
    assert samples[("fhir_cat2_runs_total", (("command", "sync"), ("outcome", "ok")))] == 2
    assert samples[("fhir_cat2_retries_total", (("command", "sync"),))] == 1
    assert (
        samples[
            (
                "fhir_cat2_written_total",
                (("command", "sync"), ("outcome", "created"), ("resource_type", "Claim")),
            )
        ]
        == claims
    )
    assert (
        samples[
            (
                "fhir_cat2_written_total",
                (("command", "sync"), ("outcome", "unchanged"), ("resource_type", "Claim")),
            )
        ]
        == claims
    )
    stamp = samples[("fhir_cat2_watermark_timestamp_seconds", (("resource_type", "Observation"),))]
    assert abs(stamp - time.time()) < 600
