"""A sync whose writes the server refuses, through the real command line (a fake server with `responses`):
exit 6 over 1, the watermark moves (every write is in the outbox), the summary, report and metrics count the
pending writes, ``outbox list|retry|drop`` show and handle them, and a dry run never touches them.
(Against a real server: tests/live/test_outbox_live.py.)"""

from __future__ import annotations

import json
import re

import responses

from fhir_cat2.cli import main
from fhir_cat2.state import SyncState

from .test_sync_offline import BASE, FakeServer, data, sleeps  # noqa: F401

REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "no MeasureReports for Jane Q"}],
}


def install(rsps: responses.RequestsMock, accept_reports: bool) -> None:
    """The fake server; transactions with a MeasureReport and MeasureReport PUTs are refused unless
    ``accept_reports``."""
    FakeServer(data(), page_size=50).install(rsps)

    def transaction(request):
        if not accept_reports and b'"MeasureReport"' in request.body:
            return 422, {}, json.dumps(REFUSED)
        entries = json.loads(request.body)["entry"]
        response = [{"response": {"status": "201 Created"}} for _ in entries]
        return (
            200,
            {},
            json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": response}),
        )

    def put(request):
        if not accept_reports and "/MeasureReport/" in request.url:
            return 422, {}, json.dumps(REFUSED)
        return 201, {}, "{}"

    rsps.add_callback(responses.POST, BASE, callback=transaction)
    rsps.add_callback(responses.PUT, re.compile(re.escape(BASE) + r"/\w+/[\w.-]+$"), callback=put)


def sync(tmp_path, *extra: str, accept_reports: bool = False) -> int:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, accept_reports)
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
                "--metrics-file",
                str(tmp_path / "sync.prom"),
                *extra,
            ]
        )


def outbox(tmp_path, *args: str, accept_reports: bool = True) -> int:
    argv = ["outbox", *args, "--state", str(tmp_path / "state.sqlite")]
    if args[0] != "retry":
        return main(argv)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, accept_reports)
        return main([*argv, "--base-url", BASE, "--out", str(tmp_path / "retry")])


def report(tmp_path, folder: str = "out") -> dict:
    return json.loads((tmp_path / folder / "run-report.json").read_text())


def test_refused_writes_exit_6_move_the_watermark_and_are_counted_everywhere(tmp_path, capsys):
    assert sync(tmp_path) == 6
    err = capsys.readouterr().err
    summary = err.strip().splitlines()[-1]
    first = report(tmp_path)
    pending = first["writes_pending"]
    assert pending >= 1 and first["writes_pending_by_type"] == {"MeasureReport": pending}
    assert f"{pending} writes pending in the outbox; watermark moved" in summary
    assert first["status"] == "completed" and first["exit_code"] == 6 and first["watermark_moved"] is True
    assert first["write_back"]["MeasureReport"]["pending"] == pending and first["quarantined"] == 0
    assert "Jane" not in err  # the server's diagnostics stay out of stderr
    metrics = (tmp_path / "sync.prom").read_text()
    assert f'fhir_cat2_writes_pending{{job_name="sync",resource_type="MeasureReport"}} {pending}' in metrics
    assert 'fhir_cat2_runs_total{command="sync",job_name="sync",outcome="writes_pending"} 1' in metrics

    assert outbox(tmp_path, "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == pending and {r["resource_type"] for r in rows} == {"MeasureReport"}
    assert (
        rows[0]["reason"] == "HTTP 422 Unprocessable Entity: error: processing" and rows[0]["attempts"] == 1
    )
    assert "Jane" not in json.dumps(rows)

    assert sync(tmp_path) == 6  # nothing changed on the server: re-sent, refused again, reported again
    assert report(tmp_path)["writes_pending"] == pending and report(tmp_path)["outbox_resent"] == pending
    assert outbox(tmp_path, "list") == 0
    listing = capsys.readouterr().out
    assert "MeasureReport" in listing and f"{pending} pending writes" in listing and "    2  " in listing

    assert sync(tmp_path, accept_reports=True) == 0  # the refusal lifted: delivered, the outbox is empty
    again = report(tmp_path)
    # re-sent, then written again by the run itself: this fake server keeps nothing (sekmet: tests/live)
    assert again["writes_pending"] == 0 and again["write_back"]["MeasureReport"]["created"] == 2 * pending
    assert 'resource_type="MeasureReport"} 0' in (tmp_path / "sync.prom").read_text()


def test_outbox_retry_exits_6_while_refused_then_0_and_drop_says_how_many(tmp_path, capsys):
    assert sync(tmp_path) == 6
    pending = report(tmp_path)["writes_pending"]
    assert outbox(tmp_path, "retry", accept_reports=False) == 6
    retried = report(tmp_path, "retry")
    assert retried["writes_pending"] == pending and retried["outbox_resent"] == pending
    assert retried["status"] == "completed" and retried["mode"] == "outbox-retry"
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith(f"fhir-cat2 outbox retry: {pending} pending writes re-sent")
    )
    state = SyncState(tmp_path / "state.sqlite")
    assert state.runs(limit=1)[0]["exit_code"] == 6 and state.runs(limit=1)[0]["command"] == "outbox"
    ids = [row.id for row in state.pending_writes()]
    state.close()

    assert outbox(tmp_path, "drop", str(ids[0])) == 0
    assert capsys.readouterr().out.startswith(f"1 pending writes dropped from the outbox; {pending - 1} left")
    assert outbox(tmp_path, "drop") == 2  # neither ids nor --all
    if pending > 1:
        assert outbox(tmp_path, "retry") == 0
        assert report(tmp_path, "retry")["write_back"]["MeasureReport"] == {"created": pending - 1}
    assert outbox(tmp_path, "drop", "--all") == 0
    assert capsys.readouterr().out.strip().endswith("0 left")
    assert outbox(tmp_path, "list") == 0 and "is empty" in capsys.readouterr().out


def test_a_dry_run_never_touches_the_outbox(tmp_path):
    assert sync(tmp_path) == 6
    state = SyncState(tmp_path / "state.sqlite")
    before = state.pending_writes()
    state.close()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, accept_reports=True)
        state, out = str(tmp_path / "state.sqlite"), str(tmp_path / "d")
        code = main(
            ["sync", "--base-url", BASE, "--state", state, "--out", out, "--period=2025", "--dry-run"]
        )
        assert not [c for c in rsps.calls if c.request.method in ("PUT", "POST")]
    assert code == 0
    state = SyncState(tmp_path / "state.sqlite")
    assert state.pending_writes() == before
    state.close()


def test_outbox_drop_waits_for_no_run_it_refuses_while_one_holds_the_lock(tmp_path, capsys):
    """A sync re-sending the outbox would keep a write again that drop just removed: drop takes the runs'
    lock, and while a run holds it, drop changes nothing and exits 5 naming the holder."""
    from fhir_cat2.lock import RunLock, new_holder

    assert sync(tmp_path) == 6
    state_path = tmp_path / "state.sqlite"
    pending = report(tmp_path)["writes_pending"]
    with RunLock(state_path, new_holder("a" * 32, "fhir-cat2 sync")):
        assert outbox(tmp_path, "drop", "--all") == 5
        assert "another run holds the lock" in capsys.readouterr().err
        state = SyncState(state_path)
        assert len(state.pending_writes()) == pending
        state.close()
    assert outbox(tmp_path, "drop", "--all") == 0
