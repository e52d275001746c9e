"""Write-back decisions of the server sink (with `responses`): skip unchanged, If-Match on change, a 412
re-read and retried once then quarantined, one bad resource never sinks a bundle, conditional create,
withdrawal, and appending our lines to a billing Claim without duplicating them on a rerun."""

from __future__ import annotations

import copy
import json
import time

import pytest
import responses

from fhir_cat2.emit.ids import CLAIM_IDENTIFIER_SYSTEM, TAG_CODE, TAG_SYSTEM, claim_key, resource_id
from fhir_cat2.fhir import FhirClient, RetryPolicy
from fhir_cat2.sinks.planner import LINE_EXTENSION, merge_lines
from fhir_cat2.sinks.server import ServerSink

from .conftest import MemorySink

BASE = "https://fhir.test/r4"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)


def our_claim(encounter: str = "e1", code: str = "3074F") -> dict:
    key = claim_key("p1", f"Encounter/{encounter}", "hedis", 2025)
    return {
        "resourceType": "Claim",
        "id": resource_id(key),
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": CLAIM_IDENTIFIER_SYSTEM, "value": key}],
        "status": "active",
        "patient": {"reference": "Patient/p1"},
        "diagnosis": [
            {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "icd", "code": "I10"}]}}
        ],
        "item": [
            {
                "sequence": 1,
                "diagnosisSequence": [1],
                "productOrService": {"coding": [{"code": code}]},
                "encounter": [{"reference": f"Encounter/{encounter}"}],
            }
        ],
    }


def on_server(resource: dict, version: str = "1") -> dict:
    stored = copy.deepcopy(resource)
    stored["meta"] = {
        **stored.get("meta", {}),
        "versionId": version,
        "lastUpdated": "2026-01-01T00:00:00.000Z",
    }
    return stored


def searchset(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def sink(**kw) -> tuple[ServerSink, MemorySink]:
    quarantine = MemorySink()
    client = FhirClient(BASE, retry=RetryPolicy(attempts=2))
    return ServerSink(client, quarantine, **kw), quarantine


def bundles_sent() -> list[dict]:
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.method == "POST" and c.request.url.rstrip("/") == BASE
    ]


@responses.activate
def test_unchanged_content_is_not_written():
    claim = our_claim()
    responses.get(f"{BASE}/Claim", json=searchset([on_server(claim, "3")]))
    s, _ = sink()
    s.write(claim)
    s.close()
    assert s.stats.to_json() == {"Claim": {"unchanged": 1}}
    assert bundles_sent() == [] and all(c.request.method == "GET" for c in responses.calls)
    assert responses.calls[0].request.params["_id"] == claim["id"]


@responses.activate
def test_new_and_changed_resources_go_in_one_transaction_with_if_match():
    changed = our_claim("e1", "3075F")
    new = our_claim("e2")
    responses.get(f"{BASE}/Claim", json=searchset([on_server(our_claim("e1", "3074F"), "4")]))
    responses.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "200 OK"}}, {"response": {"status": "201 Created"}}],
        },
    )
    s, quarantine = sink()
    s.write(changed)
    s.write(new)
    s.close()
    (bundle,) = bundles_sent()
    assert bundle["type"] == "transaction"
    requests_ = [e["request"] for e in bundle["entry"]]
    assert requests_ == [
        {"method": "PUT", "url": f"Claim/{changed['id']}", "ifMatch": 'W/"4"'},
        {"method": "PUT", "url": f"Claim/{new['id']}"},
    ]
    assert s.stats.to_json() == {"Claim": {"created": 1, "updated": 1}}
    assert quarantine.quarantined == []


@responses.activate
def test_412_is_reread_and_retried_once():
    desired = our_claim("e1", "3075F")
    responses.get(f"{BASE}/Claim", json=searchset([on_server(our_claim("e1", "3074F"), "1")]))
    responses.put(
        f"{BASE}/Claim/{desired['id']}",
        status=412,
        json={
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "conflict", "diagnostics": 'If-Match W/"1" but current is 2'}
            ],
        },
    )
    responses.get(f"{BASE}/Claim", json=searchset([on_server(our_claim("e1", "3077F"), "2")]))
    responses.put(f"{BASE}/Claim/{desired['id']}", json={})
    s, quarantine = sink()
    s.write(desired)
    s.close()
    puts = [c for c in responses.calls if c.request.method == "PUT"]
    assert [p.request.headers["If-Match"] for p in puts] == ['W/"1"', 'W/"2"']
    assert s.stats.to_json() == {"Claim": {"updated": 1}} and quarantine.quarantined == []


@responses.activate
def test_412_twice_goes_to_quarantine_and_the_run_goes_on():
    desired = our_claim("e1", "3075F")
    responses.get(f"{BASE}/Claim", json=searchset([on_server(our_claim("e1", "3074F"), "1")]))
    responses.put(f"{BASE}/Claim/{desired['id']}", status=412)
    responses.get(f"{BASE}/Claim", json=searchset([on_server(our_claim("e1", "3077F"), "2")]))
    responses.put(f"{BASE}/Claim/{desired['id']}", status=412)
    s, quarantine = sink()
    s.write(desired)
    s.close()
    assert s.stats.failed == 1
    (entry,) = quarantine.quarantined
    assert entry.ref == f"Claim/{desired['id']}" and "changed by someone else" in entry.reason


@responses.activate
def test_a_refused_resource_does_not_sink_the_rest_of_its_bundle():
    good, bad = our_claim("e1"), our_claim("e2")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.post(
        BASE,
        status=400,
        json={
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "structure",
                    "diagnostics": "Transaction rolled back: Entry 1: bad",
                }
            ],
        },
    )
    responses.put(f"{BASE}/Claim/{good['id']}", status=201, json={})
    responses.put(
        f"{BASE}/Claim/{bad['id']}",
        status=400,
        json={
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "structure", "diagnostics": "Field required (Claim.insurance)"}
            ],
        },
    )
    s, quarantine = sink()
    s.write(good)
    s.write(bad)
    s.close()
    assert s.stats.to_json() == {"Claim": {"created": 1, "failed": 1}}
    (entry,) = quarantine.quarantined
    assert "Field required (Claim.insurance)" in entry.reason


@responses.activate
def test_conditional_create_strategy():
    claim = our_claim()
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.post(f"{BASE}/Claim", status=201, json={})
    s, _ = sink(strategy="conditional-create")
    s.write(claim)
    s.close()
    lookup = responses.calls[0].request
    assert lookup.params["identifier"] == f"{CLAIM_IDENTIFIER_SYSTEM}|{claim['identifier'][0]['value']}"
    post = responses.calls[1].request
    assert (
        post.headers["If-None-Exist"]
        == f"identifier={CLAIM_IDENTIFIER_SYSTEM}|{claim['identifier'][0]['value']}"
    )
    assert "id" not in json.loads(post.body)


@responses.activate
def test_conditional_create_updates_the_server_assigned_resource():
    desired = our_claim("e1", "3075F")
    existing = on_server({**our_claim("e1", "3074F"), "id": "server-uuid-1"}, "2")
    responses.get(f"{BASE}/Claim", json=searchset([existing]))
    responses.put(f"{BASE}/Claim/server-uuid-1", json={})
    s, _ = sink(strategy="conditional-create")
    s.write(desired)
    s.close()
    put = next(c for c in responses.calls if c.request.method == "PUT").request
    assert put.headers["If-Match"] == 'W/"2"' and json.loads(put.body)["id"] == "server-uuid-1"


@responses.activate
def test_stale_write_backs_are_withdrawn_and_foreign_resources_left_alone():
    kept = our_claim("e1")
    stale = on_server(our_claim("e2"), "1")
    foreign = on_server(
        {**our_claim("e3"), "meta": {}}, "1"
    )  # same identifier system, but not tagged as ours
    responses.get(f"{BASE}/Claim", json=searchset([on_server(kept)]))
    responses.get(f"{BASE}/Claim", json=searchset([stale, foreign]))
    responses.put(f"{BASE}/Claim/{stale['id']}", json={})
    s, _ = sink()
    s.expect(
        [
            ("Claim", c["identifier"][0]["value"], None)
            for c in (our_claim("e1"), our_claim("e2"), our_claim("e3"))
        ]
    )
    s.write(kept)
    s.close()
    (put,) = [c.request for c in responses.calls if c.request.method == "PUT"]
    body = json.loads(put.body)
    assert (
        put.url.endswith(stale["id"]) and body["status"] == "cancelled" and put.headers["If-Match"] == 'W/"1"'
    )
    assert s.stats.to_json() == {"Claim": {"unchanged": 1, "withdrawn": 1}}


def test_merge_lines_is_idempotent_and_maps_diagnosis_pointers():
    billing = {
        "resourceType": "Claim",
        "id": "bill-1",
        "meta": {"versionId": "3"},
        "status": "active",
        "diagnosis": [
            {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "icd", "code": "E11.9"}]}},
            {"sequence": 2, "diagnosisCodeableConcept": {"coding": [{"system": "icd", "code": "I10"}]}},
        ],
        "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "99214"}]}}],
    }
    ours = our_claim("e1", "3074F")
    key = ours["identifier"][0]["value"]
    merged = merge_lines(billing, [ours])
    assert [i["sequence"] for i in merged["item"]] == [1, 2]
    line = merged["item"][1]
    assert line["diagnosisSequence"] == [2]  # I10 is the billing Claim's second diagnosis
    assert (
        line["extension"][0]["url"] == LINE_EXTENSION
        and line["extension"][0]["valueIdentifier"]["value"] == key
    )
    assert len(merged["diagnosis"]) == 2
    again = merge_lines(merged, [ours])
    assert again == merged  # a rerun replaces our lines, never duplicates them
    updated = merge_lines(merged, [our_claim("e1", "3075F")])
    assert [i["productOrService"]["coding"][0]["code"] for i in updated["item"]] == ["99214", "3075F"]


@responses.activate
def test_append_mode_puts_our_lines_on_the_billing_claim_with_if_match():
    ours = {**our_claim("e1"), "related": [{"claim": {"reference": "Claim/bill-1"}}]}
    billing = {
        "resourceType": "Claim",
        "id": "bill-1",
        "meta": {"versionId": "7"},
        "status": "active",
        "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "99214"}]}}],
    }
    responses.get(f"{BASE}/Claim/bill-1", json=billing)
    responses.put(f"{BASE}/Claim/bill-1", json={})
    s, _ = sink(billing_claims="append")
    s.write(ours)
    s.close()
    put = next(c.request for c in responses.calls if c.request.method == "PUT")
    assert put.headers["If-Match"] == 'W/"7"'
    assert [i["sequence"] for i in json.loads(put.body)["item"]] == [1, 2]
    assert s.stats.to_json() == {"Claim": {"appended": 1}}


@responses.activate
def test_append_mode_removes_our_lines_from_an_encounter_that_lost_its_codes():
    lost = our_claim("e9")
    key = lost["identifier"][0]["value"]
    billing = {
        "resourceType": "Claim",
        "id": "bill-9",
        "status": "active",
        "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "99214"}]}}],
    }
    billing = {**merge_lines(billing, [lost]), "meta": {"versionId": "4"}}
    assert len(billing["item"]) == 2
    responses.get(f"{BASE}/Claim", json=searchset([]))  # no separate Claim of ours to withdraw
    responses.get(f"{BASE}/Claim", json=searchset([billing]))  # Claim?encounter=Encounter/e9
    responses.put(f"{BASE}/Claim/bill-9", json={})
    s, _ = sink(billing_claims="append")
    s.expect([("Claim", key, "Encounter/e9")])
    s.close()
    assert responses.calls[1].request.params["encounter"] == "Encounter/e9"
    put = next(c.request for c in responses.calls if c.request.method == "PUT")
    body = json.loads(put.body)
    assert [i["sequence"] for i in body["item"]] == [1] and put.headers["If-Match"] == 'W/"4"'
    assert s.stats.to_json() == {"Claim": {"withdrawn": 1}}


@responses.activate
def test_batch_entries_stand_alone():
    ok, refused = our_claim("e1"), our_claim("e2")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    responses.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [
                {"response": {"status": "201 Created"}},
                {
                    "response": {
                        "status": "422 Unprocessable Entity",
                        "outcome": {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {
                                    "severity": "error",
                                    "code": "invariant",
                                    "diagnostics": "Claim.item: sequence must be unique",
                                }
                            ],
                        },
                    }
                },
            ],
        },
    )
    s, quarantine = sink(bundle_type="batch")
    s.write(ok)
    s.write(refused)
    s.close()
    assert bundles_sent()[0]["type"] == "batch"
    assert s.stats.to_json() == {"Claim": {"created": 1, "failed": 1}}
    (entry,) = quarantine.quarantined
    assert entry.ref == f"Claim/{refused['id']}" and "sequence must be unique" in entry.reason


def program_claim(program: str, code: str) -> dict:
    """One of our Claims for encounter e1 under ``program``, related to the billing Claim bill-1."""
    key = claim_key("p1", "Encounter/e1", program, 2025)
    return {
        **our_claim("e1", code),
        "id": resource_id(key),
        "identifier": [{"system": CLAIM_IDENTIFIER_SYSTEM, "value": key}],
        "related": [{"claim": {"reference": "Claim/bill-1"}}],
    }


def billing_claim(version: str, *codes: str) -> dict:
    return {
        "resourceType": "Claim",
        "id": "bill-1",
        "meta": {"versionId": version},
        "status": "active",
        "item": [
            {"sequence": n, "productOrService": {"coding": [{"code": code}]}}
            for n, code in enumerate(codes, start=1)
        ],
    }


def our_line_keys(claim: dict) -> set[str]:
    return {
        e["valueIdentifier"]["value"]
        for i in claim["item"]
        for e in i.get("extension", [])
        if e["url"] == LINE_EXTENSION
    }


@responses.activate
def test_two_of_our_claims_for_one_billing_claim_are_appended_in_one_write():
    """Before: two PUTs of bill-1 with the same If-Match in one transaction (a real server answers 412 to
    the second, whose re-merge then dropped the first Claim's lines)."""
    hedis, mips = program_claim("hedis", "3074F"), program_claim("mips", "G8752")
    responses.get(f"{BASE}/Claim/bill-1", json=billing_claim("7", "99214"))
    put = responses.put(f"{BASE}/Claim/bill-1", json={})
    responses.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    s, quarantine = sink(billing_claims="append")
    s.write(hedis)
    s.write(mips)
    s.close()
    assert bundles_sent() == [] and put.call_count == 1
    request = put.calls[0].request
    assert request.headers["If-Match"] == 'W/"7"'
    keys = {c["identifier"][0]["value"] for c in (hedis, mips)}
    assert our_line_keys(json.loads(request.body)) == keys
    assert s.stats.to_json() == {"Claim": {"appended": 2}} and quarantine.quarantined == []


@responses.activate
def test_a_412_on_a_merged_append_re_merges_both_claims_onto_the_new_version():
    hedis, mips = program_claim("hedis", "3074F"), program_claim("mips", "G8752")
    responses.get(f"{BASE}/Claim/bill-1", json=billing_claim("7", "99214"))
    responses.put(f"{BASE}/Claim/bill-1", status=412, json={})
    responses.get(f"{BASE}/Claim/bill-1", json=billing_claim("8", "99214", "99215"))  # billed meanwhile
    responses.put(f"{BASE}/Claim/bill-1", json={})
    s, quarantine = sink(billing_claims="append", bundle_type="single")
    s.write(hedis)
    s.write(mips)
    s.close()
    puts = [c.request for c in responses.calls if c.request.method == "PUT"]
    assert [p.headers["If-Match"] for p in puts] == ['W/"7"', 'W/"8"']
    retried = json.loads(puts[1].body)
    assert [i["productOrService"]["coding"][0]["code"] for i in retried["item"][:2]] == ["99214", "99215"]
    assert our_line_keys(retried) == {c["identifier"][0]["value"] for c in (hedis, mips)}
    assert s.stats.to_json() == {"Claim": {"appended": 2}} and quarantine.quarantined == []


@responses.activate
def test_a_key_written_twice_in_one_batch_is_one_write_of_its_last_state():
    first, last = our_claim("e1", "3074F"), our_claim("e1", "3075F")
    responses.get(f"{BASE}/Claim", json=searchset([]))
    put = responses.put(f"{BASE}/Claim/{last['id']}", status=201, json={})
    responses.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    s, _ = sink()
    s.write(first)
    s.write(last)
    s.close()
    assert bundles_sent() == [] and put.call_count == 1
    assert json.loads(put.calls[0].request.body) == last
    assert s.stats.to_json() == {"Claim": {"created": 1}}


@responses.activate
def test_appending_one_programs_claim_keeps_the_lines_another_program_appended():
    """Before: every line of ours was taken off before appending, so a mips-claims run wiped the lines a
    hedis run had put on the same billing Claim (and the next hedis run wiped the mips ones)."""
    hedis, mips = program_claim("hedis", "3074F"), program_claim("mips", "G8752")
    billing = {**merge_lines(billing_claim("3", "99214"), [hedis]), "meta": {"versionId": "3"}}
    responses.get(f"{BASE}/Claim/bill-1", json=billing)
    put = responses.put(f"{BASE}/Claim/bill-1", json={})
    s, _ = sink(billing_claims="append")
    s.write(mips)
    s.close()
    body = json.loads(put.calls[0].request.body)
    assert our_line_keys(body) == {c["identifier"][0]["value"] for c in (hedis, mips)}
    assert [i["sequence"] for i in body["item"]] == [1, 2, 3]
