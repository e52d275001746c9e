"""The outbox: the store in the state file (one row per write target, type and business key; reported
again, superseded, delivered, dropped; schema 3 files migrated) and the server sink's use of it (refused
writes kept with a data-free reason, everything after the write target went away kept without another
request, re-sent first and planned afresh, superseded by the run's newer desired state)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time

import pytest
import responses

from fhir_cat2.emit.ids import MEASURE_REPORT_IDENTIFIER_SYSTEM, TAG_CODE, TAG_SYSTEM, measure_report_key
from fhir_cat2.fhir import FhirClient, RetryPolicy
from fhir_cat2.sinks.planner import merge_lines
from fhir_cat2.sinks.server import ServerSink, refusal_reason
from fhir_cat2.state import Outbox, SyncState

from .conftest import MemorySink
from .test_server_sink import BASE, on_server, our_claim, searchset

TARGET = "https://fhir.test/r4"
REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "invariant",
            "expression": ["Claim.insurance"],
            "diagnostics": "Claim for Jane Q Public (MRN 884422) needs insurance",
        }
    ],
}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)


@pytest.fixture
def state(tmp_path):
    store = SyncState(tmp_path / "state.sqlite")
    yield store
    store.close()


def outbox_of(state: SyncState, job: str = "job-a", run_id: str = "run-1") -> Outbox:
    return Outbox(state, TARGET, job, run_id)


def sink(state: SyncState, **kw) -> tuple[ServerSink, MemorySink]:
    quarantine = MemorySink()
    client = FhirClient(BASE, retry=RetryPolicy(attempts=2))
    return ServerSink(client, quarantine, outbox=outbox_of(state), **kw), quarantine


# ------------------------------------------------------------------------------------------ the store


def test_a_write_kept_again_is_reported_again_with_the_newer_desired_state(state):
    first, newer = our_claim("e1", "3074F"), our_claim("e1", "3075F")
    key = first["identifier"][0]["value"]
    state.keep_pending(TARGET, "Claim", key, first, reason="HTTP 422", detail="d1", job="j", run_id="r1")
    (row,) = state.pending_writes()
    state.keep_pending(TARGET, "Claim", key, newer, reason="HTTP 400", detail="d2", job="", run_id="r2")
    (again,) = state.pending_writes()
    assert again.id == row.id and again.attempts == 2 and again.first_failed_at == row.first_failed_at
    assert again.resource == newer and again.reason == "HTTP 400" and again.detail == "d2"
    assert again.run_id == "r2" and again.job == "j"  # a retry without a job keeps the row's job
    state.keep_pending(TARGET, "Claim", key, None, reason="HTTP 503", encounter="Encounter/e1")
    (withdrawal,) = state.pending_writes()
    assert withdrawal.resource is None and withdrawal.encounter == "Encounter/e1" and withdrawal.attempts == 3


def test_rows_are_per_write_target_and_leave_when_delivered_or_dropped(state):
    for target in (TARGET, "https://other.test/fhir"):
        for key in ("k1", "k2"):
            state.keep_pending(target, "MeasureReport", key, {"resourceType": "MeasureReport"}, reason="r")
    state.keep_pending(TARGET, "Claim", "k3", None, reason="r")
    assert state.pending_counts(TARGET) == {"Claim": 1, "MeasureReport": 2}
    assert len(state.pending_writes()) == 5
    state.delivered(TARGET, "MeasureReport", "k1")
    assert [r.key for r in state.pending_writes(TARGET)] == ["k2", "k3"]
    ids = [r.id for r in state.pending_writes("https://other.test/fhir")]
    assert state.drop_pending([ids[0], 999]) == 1
    assert state.drop_pending(None) == 3 and state.pending_writes() == []


def test_a_schema_3_state_file_gains_the_outbox_and_stays_owner_only(tmp_path):
    path = tmp_path / "v3.sqlite"
    SyncState(path).close()
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE outbox; UPDATE meta SET value='3' WHERE key='schema_version';")
    db.commit()
    db.close()
    state = SyncState(path)
    state.keep_pending(TARGET, "Claim", "k", None, reason="r")
    version = state._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == "4" and len(state.pending_writes()) == 1
    state.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_reason_names_status_and_issue_codes_never_the_diagnostics():
    from fhir_cat2.errors import FatalServerError

    reason = refusal_reason(FatalServerError("PUT /r4/Claim/x: HTTP 422", status=422, outcome=REFUSED))
    assert reason == "HTTP 422 Unprocessable Entity: error: invariant at Claim.insurance"


# ------------------------------------------------------------------------------------------ the sink


@responses.activate
def test_a_refused_write_is_kept_with_its_reason_and_the_diagnostics_stay_out_of_the_reason(state):
    good, bad = our_claim("e1"), our_claim("e2")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.post(BASE, status=422, json=REFUSED)
    responses.put(f"{BASE}/Claim/{good['id']}", status=201, json={})
    responses.put(f"{BASE}/Claim/{bad['id']}", status=422, json=REFUSED)
    s, quarantine = sink(state)
    s.write(good)
    s.write(bad)
    s.close()
    assert s.stats.to_json() == {"Claim": {"created": 1, "pending": 1}}
    assert s.stats.failed == 0 and s.unkept == 0 and s.stats.pending == 1
    (row,) = state.pending_writes()
    assert row.key == bad["identifier"][0]["value"] and row.resource == bad
    assert row.reason == "HTTP 422 Unprocessable Entity: error: invariant at Claim.insurance"
    assert "884422" in row.detail and "884422" not in row.reason
    assert row.job == "job-a" and row.run_id == "run-1" and row.attempts == 1
    (entry,) = quarantine.quarantined
    assert "kept in the outbox" in entry.reason and "884422" in entry.reason  # the operator's copy


@responses.activate
def test_after_the_target_goes_away_the_rest_is_kept_without_another_request(state):
    claims = [our_claim(f"e{i}") for i in range(5)]
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.post(BASE, status=503, json={"resourceType": "OperationOutcome", "issue": []})
    s, quarantine = sink(state, bundle_size=2)
    stale = [("Claim", "gone-key", "Encounter/e9")]
    s.expect(stale)
    for claim in claims:
        s.write(claim)
    s.close()
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 2  # one transaction, tried twice (the retry budget); nothing after it
    assert s.stats.to_json() == {"Claim": {"pending": 6}} and s.unkept == 0
    rows = {r.key: r for r in state.pending_writes()}
    assert {c["identifier"][0]["value"] for c in claims} | {"gone-key"} == set(rows)
    assert rows["gone-key"].resource is None  # the withdrawal is kept too
    assert all(
        r.reason == "write target unavailable after the retry budget (HTTP 503)" for r in rows.values()
    )
    assert quarantine.quarantined == []  # nothing was refused


@responses.activate
def test_pending_writes_are_resent_first_and_planned_afresh(state):
    delivered, unchanged, refused = our_claim("e1"), our_claim("e2"), our_claim("e3")
    box = outbox_of(state, run_id="earlier")
    for claim in (delivered, unchanged, refused):
        box.keep("Claim", claim["identifier"][0]["value"], claim, "HTTP 422")
    responses.get(f"{BASE}/Claim", json=searchset([on_server(unchanged, "2")]))
    responses.post(BASE, status=422, json=REFUSED)
    responses.put(f"{BASE}/Claim/{delivered['id']}", status=201, json={})
    responses.put(f"{BASE}/Claim/{refused['id']}", status=422, json=REFUSED)
    s, _ = sink(state)
    assert s.resend_pending() == 3
    assert s.stats.to_json() == {"Claim": {"created": 1, "pending": 1, "unchanged": 1}}
    (row,) = state.pending_writes()
    assert row.key == refused["identifier"][0]["value"] and row.attempts == 2 and row.run_id == "run-1"
    puts = [c.request.url.rsplit("/", 1)[1] for c in responses.calls if c.request.method == "PUT"]
    assert unchanged["id"] not in puts  # the server already held it: nothing written


@responses.activate
def test_the_runs_newer_desired_state_supersedes_the_row(state):
    old, newer = our_claim("e1", "3074F"), our_claim("e1", "3075F")
    key = old["identifier"][0]["value"]
    outbox_of(state, run_id="earlier").keep("Claim", key, old, "HTTP 422")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.put(f"{BASE}/Claim/{old['id']}", status=422, json=REFUSED)
    s, _ = sink(state)
    s.resend_pending()
    s.write(newer)
    s.close()
    (row,) = state.pending_writes()
    assert row.resource == newer and row.attempts == 3  # kept, re-sent and refused, written and refused


@responses.activate
def test_a_pending_write_the_run_no_longer_wants_is_withdrawn_not_kept(state):
    """The row asked for a MeasureReport the server refused; this run's data no longer supports it and
    the server holds none: nothing is pending any more."""
    key = measure_report_key("p1", "https://example.org/Measure/x", 2025)
    report = {
        "resourceType": "MeasureReport",
        "id": f"cat2-{key[:40]}",
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": MEASURE_REPORT_IDENTIFIER_SYSTEM, "value": key}],
        "status": "complete",
    }
    outbox_of(state, run_id="earlier").keep("MeasureReport", key, report, "HTTP 422")
    responses.get(f"{BASE}/MeasureReport", json=searchset([]))
    responses.put(f"{BASE}/MeasureReport/{report['id']}", status=422, json=REFUSED)
    s, _ = sink(state)
    s.resend_pending()
    assert len(state.pending_writes()) == 1
    s.expect([("MeasureReport", key, None)])
    s.close()
    assert state.pending_writes() == []


@responses.activate
def test_a_write_neither_delivered_nor_kept_is_counted_unkept(state, monkeypatch):
    claim = our_claim("e1")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.put(f"{BASE}/Claim/{claim['id']}", status=422, json=REFUSED)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(state, "keep_pending", broken)
    s, quarantine = sink(state)
    s.write(claim)
    s.close()
    assert s.unkept == 1 and s.stats.to_json() == {"Claim": {"failed": 1}}
    assert len(quarantine.quarantined) == 2  # the refusal, and that it could not be kept


def test_the_outbox_keeps_json_the_next_run_reads_back(state):
    claim = our_claim()
    outbox_of(state).keep("Claim", "k", claim, "r")
    stored = state._db.execute("SELECT resource FROM outbox").fetchone()[0]
    assert json.loads(stored) == claim


# ----------------------------------------------------------------- conflicts and billing-Claim lines (review)


def billing_with_lines_of(*ours: dict) -> dict:
    """A billing Claim (not ours) carrying our lines for each of ``ours``, as append mode left it."""
    billing = {
        "resourceType": "Claim",
        "id": "bill-9",
        "status": "active",
        "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "99214"}]}}],
    }
    for claim in ours:
        billing = merge_lines(billing, [claim])
    return {**billing, "meta": {"versionId": "4"}}


@responses.activate
def test_a_conflict_on_a_line_withdrawal_is_kept_not_counted_done(state):
    """A 412 on the billing Claim while taking our lines off it: before, the re-plan read *our* Claim, found
    none and counted 'unchanged', so the lines stayed and the watermark moved."""
    ours = our_claim("e9")
    key = ours["identifier"][0]["value"]
    responses.get(f"{BASE}/Claim", json=searchset([]))  # no separate Claim of ours
    responses.get(f"{BASE}/Claim", json=searchset([billing_with_lines_of(ours)]))  # Claim?encounter=
    responses.put(f"{BASE}/Claim/bill-9", status=412, json={})  # the billing system changed it meanwhile
    withdrawing, _ = sink(state, billing_claims="append")
    withdrawing.expect([("Claim", key, "Encounter/e9")])
    withdrawing.close()
    [row] = state.pending_writes()
    assert (row.key, row.resource, row.encounter) == (key, None, "Encounter/e9")
    assert "unchanged" not in withdrawing.stats.to_json().get("Claim", {})


@responses.activate
def test_a_pending_line_withdrawal_stays_until_the_lines_are_looked_up(state):
    """Re-sent: the separate-Claim withdrawal (nothing there) must not settle the row before the billing-Claim
    look-up; that look-up refused, the row stays pending."""
    ours = our_claim("e9")
    key = ours["identifier"][0]["value"]
    outbox_of(state, run_id="earlier").keep("Claim", key, None, "HTTP 503", encounter="Encounter/e9")
    responses.get(f"{BASE}/Claim", json=searchset([]))  # no separate Claim of ours
    responses.get(f"{BASE}/Claim", status=400, json=REFUSED)  # Claim?encounter= refused
    resending, _ = sink(state, billing_claims="append")
    resending.resend_pending()
    assert [(r.key, r.encounter) for r in state.pending_writes()] == [(key, "Encounter/e9")]


@responses.activate
def test_a_pending_line_withdrawal_is_done_after_the_mode_changed_to_separate(state):
    ours = our_claim("e9")
    key = ours["identifier"][0]["value"]
    outbox_of(state, run_id="earlier").keep("Claim", key, None, "HTTP 503", encounter="Encounter/e9")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.get(f"{BASE}/Claim", json=searchset([billing_with_lines_of(ours)]))
    put = responses.put(f"{BASE}/Claim/bill-9", status=200, json={})
    resending, _ = sink(state, billing_claims="separate")
    resending.resend_pending()
    assert put.call_count == 1 and state.pending_writes() == []
    assert [i["sequence"] for i in json.loads(put.calls[0].request.body)["item"]] == [1]


@responses.activate
def test_a_refused_re_read_after_a_conflict_keeps_the_write_instead_of_failing_the_run(state):
    changed, other = our_claim("e1", "3074F"), our_claim("e2")
    responses.get(f"{BASE}/Claim", json=searchset([on_server(our_claim("e1", "3075F"), "1")]))
    responses.put(f"{BASE}/Claim/{other['id']}", status=201, json={})
    responses.put(f"{BASE}/Claim/{changed['id']}", status=412, json={})
    responses.get(f"{BASE}/Claim", status=400, json=REFUSED)  # the re-read after the 412 is refused
    writing, _ = sink(state, bundle_type="single")
    writing.write(other)
    writing.write(changed)
    writing.close()  # before: FatalServerError escaped close() and failed the run
    [row] = state.pending_writes()
    assert row.key == changed["identifier"][0]["value"] and row.resource == changed
    assert writing.stats.to_json()["Claim"]["created"] == 1


@responses.activate
def test_a_conflict_on_a_line_withdrawal_keeps_every_key_whose_lines_it_carried(state):
    """Before: the write named only the first key found on the billing Claim; the other was counted as
    having no line left, so after the 412 only one key was kept and the other's lines stayed for good."""
    first, second = our_claim("e9"), {**our_claim("e9"), "identifier": [{**our_claim("e9")["identifier"][0]}]}
    second["identifier"][0]["value"] = "another-key-of-ours"
    keys = {c["identifier"][0]["value"] for c in (first, second)}
    responses.get(f"{BASE}/Claim", json=searchset([]))  # no separate Claims of ours
    responses.get(f"{BASE}/Claim", json=searchset([billing_with_lines_of(first, second)]))
    put = responses.put(f"{BASE}/Claim/bill-9", status=412, json={})
    withdrawing, _ = sink(state, billing_claims="append")
    withdrawing.expect([("Claim", key, "Encounter/e9") for key in sorted(keys)])
    withdrawing.close()
    assert put.call_count == 1  # one write takes both keys' lines off
    assert {(r.key, r.resource, r.encounter) for r in state.pending_writes()} == {
        (key, None, "Encounter/e9") for key in keys
    }


@responses.activate
def test_a_refused_append_keeps_each_of_our_claims_merged_into_it(state):
    hedis, mips = (
        {**our_claim("e1", code), "related": [{"claim": {"reference": "Claim/bill-1"}}]}
        for code in ("3074F", "G8752")
    )
    mips["identifier"] = [{**mips["identifier"][0], "value": "mips-key"}]
    responses.get(f"{BASE}/Claim/bill-1", json={**billing_with_lines_of(), "id": "bill-1"})
    responses.put(f"{BASE}/Claim/bill-1", status=422, json=REFUSED)
    s, quarantine = sink(state, billing_claims="append")
    s.write(hedis)
    s.write(mips)
    s.close()
    rows = {r.key: r.resource for r in state.pending_writes()}
    assert rows == {c["identifier"][0]["value"]: c for c in (hedis, mips)}
    assert s.stats.to_json() == {"Claim": {"pending": 2}} and s.unkept == 0
    (entry,) = quarantine.quarantined  # one refusal, one quarantine entry
    assert entry.ref == "Claim/bill-1"
