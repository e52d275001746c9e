"""No write is lost (issue 10): against sekmet behind the fault proxy, writes the server refuses, and writes
that fail after the retry budget in the middle of the write-back, are kept in the outbox; the run exits 6
and moves its watermark; ``outbox list`` shows them; the next run re-sends them first (a refusal whose cause
did not change is reported again); once the server takes them, it holds exactly what a clean run writes,
nothing duplicated, and the outbox is empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main
from tests.support.fault_proxy import FaultProxy

from .conftest import EXTERNAL
from .test_faults_live import WRITE, faulty, faulty_server, proxy, sync, watermarks  # noqa: F401
from .test_sync_live import RUN, assert_server_equals_replay, fixture_writebacks, fresh, replayed  # noqa: F401

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(EXTERNAL) and not EXTERNAL.startswith("http://"), reason="the proxy speaks plain HTTP"
    ),
]

REFUSE_MEASURE_REPORTS = [
    # a transaction holding a MeasureReport, then (sent one by one) each MeasureReport: 422
    dict(kind="status", method="POST", path=WRITE, body=r'"resourceType": ?"MeasureReport"', times=None),
    dict(kind="status", method="PUT", path=r"^/fhir/MeasureReport/", times=None),
]


@pytest.fixture
def no_overlap(faulty, monkeypatch):
    """The next run reads nothing again (the fixtures are older than the watermark): it writes only what
    the outbox holds, as in the issue's report."""
    monkeypatch.setenv("FHIR_CAT2_SYNC__OVERLAP_MINUTES", "0")
    return faulty


def outbox_rows(tmp_path: Path, capsys) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["outbox", "list", "--json", "--state", str(tmp_path / "state.sqlite")]) == 0
    return json.loads(capsys.readouterr().out)


def keys(resources: dict[str, dict[str, Any]]) -> set[str]:
    return {r["identifier"][0]["value"] for r in resources.values()}


def test_refused_writes_wait_in_the_outbox_and_the_server_ends_with_a_clean_runs_resources(
    no_overlap, replayed, tmp_path, capsys
):
    proxy: FaultProxy = no_overlap
    for fault in REFUSE_MEASURE_REPORTS:
        proxy.add(**fault, status=422, issue_code="processing")
    server = faulty_server(proxy)
    reports = keys(replayed["MeasureReport"])

    code, first = sync(proxy, tmp_path)
    assert code == 6, first.get("error")
    assert first["status"] == "completed" and first["writes_pending_by_type"] == {
        "MeasureReport": len(reports)
    }
    assert first["watermark_moved"] is True and watermarks(tmp_path, proxy.base_url)
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"; {len(reports)} writes pending in the outbox; watermark moved; in " in summary
    on_server = fixture_writebacks(server)
    assert on_server["MeasureReport"] == {} and set(on_server["Claim"]) == set(replayed["Claim"])
    rows = outbox_rows(tmp_path, capsys)
    assert {r["business_key"] for r in rows} == reports
    assert {(r["wanted"], r["reason"], r["attempts"]) for r in rows} == {
        ("write", "HTTP 422 Unprocessable Entity: error: processing", 1)
    }
    marks = watermarks(tmp_path, proxy.base_url)

    code, second = sync(proxy, tmp_path)  # still refused: re-sent first, reported again, not dropped
    assert code == 6 and second["patients_affected"] == 0 and second["outbox_resent"] == len(reports)
    assert second["writes_pending"] == len(reports) and second["watermark_moved"] is True
    moved = watermarks(tmp_path, proxy.base_url)
    assert set(moved) == set(marks) and all(moved[t] > marks[t] for t in marks)
    assert {(r["business_key"], r["attempts"]) for r in outbox_rows(tmp_path, capsys)} == {
        (key, 2) for key in reports
    }

    proxy.clear()  # the server takes them now
    code, third = sync(proxy, tmp_path)
    assert code == 0 and third["writes_pending"] == 0
    assert third["write_back"]["MeasureReport"] == {"created": len(reports)}
    assert outbox_rows(tmp_path, capsys) == []
    assert_server_equals_replay(server, replayed)  # exactly a clean run's resources, no duplicate


DOWN_MID_WRITE_BACK = {
    "503 to every write after the first": dict(
        kind="status", method="POST", path=WRITE, status=503, times=None, after=1
    ),
    "connections dropped on every write after the first": dict(
        kind="drop", method="POST", path=WRITE, times=None, after=1
    ),
    "writes processed but every answer too late": dict(
        kind="delay_after", method="POST", path=WRITE, seconds=2.0, times=None, after=1
    ),
}


@pytest.mark.parametrize("fault", list(DOWN_MID_WRITE_BACK.values()), ids=list(DOWN_MID_WRITE_BACK))
def test_writes_that_fail_after_the_retry_budget_wait_in_the_outbox_until_the_server_is_back(
    no_overlap, replayed, tmp_path, capsys, fault
):
    proxy: FaultProxy = no_overlap
    injected = proxy.add(**fault)
    server = faulty_server(proxy)

    code, first = sync(proxy, tmp_path)
    assert code == 6, first.get("error")
    assert injected.hits == 3, "one write, tried for the whole retry budget, then none"
    assert first["status"] == "completed" and first["watermark_moved"] is True
    assert watermarks(tmp_path, proxy.base_url)
    rows = outbox_rows(tmp_path, capsys)
    assert first["writes_pending"] == len(rows) > 0
    assert {r["reason"] for r in rows} <= {
        "write target unavailable after the retry budget (HTTP 503)",
        "write target unavailable after the retry budget (no answer)",
    }
    written = fixture_writebacks(server)
    missing = (keys(replayed["Claim"]) - keys(written["Claim"])) | (
        keys(replayed["MeasureReport"]) - keys(written["MeasureReport"])
    )
    assert missing <= {r["business_key"] for r in rows if r["wanted"] == "write"}
    if fault["kind"] != "delay_after":
        assert missing, "the fault came after every write: the test proves nothing"

    proxy.clear()
    code, second = sync(proxy, tmp_path)
    assert code == 0 and second["patients_affected"] == 0 and second["writes_pending"] == 0
    assert second["outbox_resent"] == len(rows)
    assert outbox_rows(tmp_path, capsys) == []
    assert_server_equals_replay(server, replayed)  # nothing lost, nothing duplicated
