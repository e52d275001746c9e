"""HTTP edge cases of the FHIR client, with `responses`: retries (waits asserted, sleep patched), Retry-After,
timeouts mid-paging, next links to another host, OperationOutcome errors, the status-to-error table."""

from __future__ import annotations

import email.utils
import logging
import time

import pytest
import requests
import responses
from responses import matchers

from fhir_cat2.errors import (
    AuthError,
    FatalServerError,
    PreconditionFailedError,
    ResourceGoneError,
    RetryableServerError,
    ServerUnavailableError,
)
from fhir_cat2.fhir import FhirClient, RetryPolicy, Timeouts, parse_retry_after

BASE = "https://fhir.example.org/r4"


@pytest.fixture
def sleeps(monkeypatch):
    """time.sleep replaced by a recorder: retry tests run instantly and assert their waits."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def client(**kw) -> FhirClient:
    kw.setdefault("retry", RetryPolicy(attempts=4, backoff_base=1.0, backoff_max=30.0, retry_after_cap=120.0))
    return FhirClient(BASE, **kw)


def outcome(text: str, code: str = "processing") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def searchset(resources: list[dict], next_url: str | None = None) -> dict:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
        "link": [{"relation": "self", "url": f"{BASE}/Observation"}],
    }
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle


def obs(oid: str) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "x"}}


# ------------------------------------------------------------------------------------------- status table


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, FatalServerError),
        (401, AuthError),
        (403, AuthError),
        (404, ResourceGoneError),
        (405, FatalServerError),
        (409, FatalServerError),
        (410, ResourceGoneError),
        (412, PreconditionFailedError),
        (422, FatalServerError),
        (429, ServerUnavailableError),
        (500, ServerUnavailableError),
        (502, ServerUnavailableError),
        (503, ServerUnavailableError),
        (504, ServerUnavailableError),
    ],
)
@responses.activate
def test_status_maps_to_error_family(status, error, sleeps):
    responses.get(f"{BASE}/Patient/p1", status=status, json=outcome(f"status {status}"))
    with pytest.raises(error) as caught:
        client().read("Patient", "p1")
    assert caught.value.status == status
    retried = status in (429, 500, 502, 503, 504)
    assert len(responses.calls) == (4 if retried else 1)
    assert len(sleeps) == (3 if retried else 0)


@responses.activate
def test_error_carries_the_operation_outcome_diagnostics_but_does_not_show_them(sleeps):
    """The message (stderr, logs, run record) names the issue code and element path; the server's own
    words, which can quote a search URL or a patient's data, are kept for quarantine.ndjson only."""
    body = outcome("Patient 'Jane Doe' (1961-04-02): Claim.insurance minimum required = 1", "invariant")
    body["issue"][0]["expression"] = ["Claim.insurance", "Claim.patient.where(name='Jane Doe')"]
    responses.post(BASE, status=422, json=body)
    with pytest.raises(FatalServerError) as caught:
        client().post_bundle({"resourceType": "Bundle", "type": "transaction", "entry": []})
    error = caught.value
    assert error.outcome["issue"][0]["code"] == "invariant"
    assert str(error) == "transaction of 0: HTTP 422 (server: error: invariant at Claim.insurance)"
    assert "Jane" not in str(error) and "1961" not in str(error)
    assert error.diagnostics == "error: Patient 'Jane Doe' (1961-04-02): Claim.insurance minimum required = 1"
    assert error.with_diagnostics().endswith(f"; server diagnostics: {error.diagnostics}")


def test_a_malformed_operation_outcome_still_makes_an_error():
    from fhir_cat2.errors import ServerError

    odd = {"resourceType": "OperationOutcome", "issue": [{"details": "not an object", "code": 7}, "x"]}
    error = ServerError("read Patient/p1: HTTP 400", status=400, outcome=odd)
    assert str(error) == "read Patient/p1: HTTP 400 (server: error: unspecified)"
    assert ServerError("x", outcome={"resourceType": "OperationOutcome", "issue": "broken"}).diagnostics == ""


@responses.activate
def test_a_search_outcome_entry_is_logged_without_its_diagnostics(sleeps, caplog):
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "search": {"mode": "outcome"},
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "warning",
                            "code": "not-supported",
                            "diagnostics": (
                                "Unknown parameter in Encounter?patient=Jane%20Doe&birthdate=1961-04-02"
                            ),
                        }
                    ],
                },
            }
        ],
    }
    responses.get(f"{BASE}/Encounter", json=page)
    with caplog.at_level(logging.WARNING, logger="fhir_cat2"):
        pages = list(client().search_pages("Encounter", [("_count", "10")]))
    assert len(pages) == 1 and pages[0].entries == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "server says warning: not-supported" in logged
    assert "Jane" not in logged and "1961" not in logged and "patient=" not in logged


@responses.activate
def test_an_html_error_page_is_not_shown_as_diagnostics(sleeps):
    responses.get(
        f"{BASE}/Patient/p1", status=403, body="<html><body>Forbidden</body></html>", content_type="text/html"
    )
    with pytest.raises(AuthError) as caught:
        client().read("Patient", "p1")
    assert "<html>" not in str(caught.value) and caught.value.outcome is None


# ------------------------------------------------------------------------------------------- retries


@responses.activate
def test_429_with_retry_after_seconds_waits_that_long(sleeps):
    responses.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "7"}, json=outcome("slow down"))
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert client().read("Patient", "p1").body["id"] == "p1"
    assert sleeps == [7.0]


@responses.activate
def test_429_with_retry_after_http_date(sleeps, monkeypatch):
    now = 1_800_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    later = email.utils.formatdate(now + 30, usegmt=True)
    responses.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": later})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client().read("Patient", "p1")
    assert sleeps == [pytest.approx(30.0)]


@responses.activate
def test_retry_after_is_capped(sleeps):
    responses.get(f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "86400"})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client().read("Patient", "p1")
    assert sleeps == [120.0]


@responses.activate
def test_429_without_retry_after_backs_off_exponentially_with_jitter(sleeps, monkeypatch):
    ceilings: list[float] = []

    def uniform(low: float, high: float) -> float:
        ceilings.append(high)
        return high / 2

    monkeypatch.setattr("tenacity.wait.random.uniform", uniform)  # tenacity's full-jitter draw
    for _ in range(3):
        responses.get(f"{BASE}/Patient/p1", status=429)
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client().read("Patient", "p1")
    assert ceilings == [1.0, 2.0, 4.0]
    assert sleeps == [0.5, 1.0, 2.0]


@responses.activate
def test_backoff_is_capped_and_a_retry_after_between_backoffs_is_honoured(sleeps, monkeypatch):
    ceilings: list[float] = []

    def uniform(low: float, high: float) -> float:
        ceilings.append(high)
        return high / 2

    monkeypatch.setattr("tenacity.wait.random.uniform", uniform)
    responses.get(f"{BASE}/Patient/p1", status=429)
    responses.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/Patient/p1", status=503)
    responses.get(f"{BASE}/Patient/p1", status=503)
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    policy = RetryPolicy(attempts=5, backoff_base=1.0, backoff_max=3.0, retry_after_cap=120.0)
    client(retry=policy).read("Patient", "p1")
    assert ceilings == [1.0, 3.0, 3.0]  # 2**(n-1) up to backoff_max; no draw for the Retry-After
    assert sleeps == [0.5, 7.0, 1.5, 1.5]


@responses.activate
def test_503_then_success(sleeps):
    responses.get(f"{BASE}/metadata", status=503, json=outcome("maintenance"))
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "rest": []})
    c = client()
    assert c.capabilities()["resourceType"] == "CapabilityStatement"
    assert len(sleeps) == 1 and c.retries == 1


@responses.activate
def test_server_down_past_the_budget_raises_unavailable(sleeps):
    responses.get(f"{BASE}/metadata", body=requests.ConnectionError("refused"))
    with pytest.raises(ServerUnavailableError) as caught:
        client().capabilities()
    assert "still failing after 4 attempts" in str(caught.value) and "connection failed" in str(caught.value)
    assert len(responses.calls) == 4 and len(sleeps) == 3


@responses.activate
def test_other_4xx_fail_at_once(sleeps):
    responses.get(f"{BASE}/Observation", status=400, json=outcome("Unknown search parameter 'bogus'"))
    with pytest.raises(FatalServerError):
        list(client().search("Observation", [("bogus", "1")]))
    assert len(responses.calls) == 1 and sleeps == []


def test_retry_after_parsing():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(email.utils.formatdate(1000.0, usegmt=True), now=990.0) == pytest.approx(10.0)
    assert parse_retry_after(email.utils.formatdate(1000.0, usegmt=True), now=2000.0) == 0.0


# ------------------------------------------------------------------------------------------- paging


@responses.activate
def test_timeout_mid_paging_is_retried_and_paging_goes_on(sleeps):
    page2 = f"{BASE}/Observation?_getpages=abc&_offset=2"
    responses.get(
        f"{BASE}/Observation",
        json=searchset([obs("o1"), obs("o2")], page2),
        match=[matchers.query_param_matcher({"_count": "2"})],
    )
    responses.get(page2, body=requests.ReadTimeout("read timed out"))
    responses.get(page2, json=searchset([obs("o3")]))
    ids = [r["id"] for r in client().search("Observation", [("_count", "2")])]
    assert ids == ["o1", "o2", "o3"]
    assert len(sleeps) == 1
    # the next link was followed exactly as given
    assert responses.calls[1].request.url == page2 == responses.calls[2].request.url


@responses.activate
def test_next_link_to_another_host_is_refused_before_any_token_is_sent(sleeps):
    from pydantic import SecretStr

    from fhir_cat2.auth import BearerTokenAuth

    evil = "https://attacker.example.net/r4/Observation?page=2"
    responses.get(f"{BASE}/Observation", json=searchset([obs("o1")], evil))
    c = client(auth=BearerTokenAuth(SecretStr("s3cret")))
    walked = []
    with pytest.raises(FatalServerError) as caught:
        for resource in c.search("Observation", []):
            walked.append(resource["id"])
    assert walked == ["o1"]
    assert "attacker.example.net" in str(caught.value) and "refusing" in str(caught.value)
    assert len(responses.calls) == 1  # nothing went to the other host
    assert responses.calls[0].request.headers["Authorization"] == "Bearer s3cret"


@responses.activate
def test_next_link_on_another_port_or_scheme_is_refused(sleeps):
    responses.get(
        f"{BASE}/Observation", json=searchset([obs("o1")], "http://fhir.example.org/r4/Observation?p=2")
    )
    with pytest.raises(FatalServerError):
        list(client().search("Observation", []))
    responses.get(
        f"{BASE}/Condition", json=searchset([obs("o1")], "https://fhir.example.org:8443/r4/Condition?p=2")
    )
    with pytest.raises(FatalServerError):
        list(client().search("Condition", []))


@responses.activate
def test_relative_next_link_is_resolved_against_the_base(sleeps):
    responses.get(
        f"{BASE}/Observation",
        json=searchset([obs("o1")], "Observation?page=2"),
        match=[matchers.query_param_matcher({})],
    )
    responses.get(
        f"{BASE}/Observation",
        json=searchset([obs("o2")]),
        match=[matchers.query_param_matcher({"page": "2"})],
    )
    assert [r["id"] for r in client().search("Observation", [])] == ["o1", "o2"]


@responses.activate
def test_outcome_entries_are_not_resources(sleeps):
    bundle = searchset([obs("o1")])
    bundle["entry"].append({"resource": outcome("parameter ignored"), "search": {"mode": "outcome"}})
    responses.get(f"{BASE}/Observation", json=bundle)
    assert [r["id"] for r in client().search("Observation", [])] == ["o1"]


@responses.activate
def test_searches_send_fhir_accept_strict_handling_and_timeouts(sleeps):
    responses.get(f"{BASE}/Observation", json=searchset([]))
    list(FhirClient(BASE, timeouts=Timeouts(3.0, 40.0)).search("Observation", [("_count", "5")]))
    request = responses.calls[0].request
    assert request.headers["Accept"] == "application/fhir+json"
    assert request.headers["Prefer"] == "handling=strict"
    assert request.req_kwargs["timeout"] == (3.0, 40.0)


@responses.activate
def test_credentials_are_never_sent_to_another_origin_directly(sleeps):
    with pytest.raises(FatalServerError):
        client().request("GET", "https://other.example.org/r4/Patient")
    assert len(responses.calls) == 0


def test_retryable_is_not_unavailable():
    assert not issubclass(RetryableServerError, ServerUnavailableError)


@responses.activate
def test_server_clock_from_bundle_meta_else_date_header(sleeps):
    responses.get(
        f"{BASE}/metadata",
        json={"resourceType": "CapabilityStatement"},
        headers={"Date": "Thu, 26 Nov 2026 23:40:09 GMT"},
    )
    responses.get(
        f"{BASE}/Patient",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 3,
            "meta": {"lastUpdated": "2026-11-26T23:40:10.512Z"},
        },
    )
    c = client()
    c.capabilities()
    assert c.server_time().isoformat() == "2026-11-26T23:40:10.512000+00:00"
    assert responses.calls[1].request.params == {"_summary": "count"}
    responses.replace(responses.GET, f"{BASE}/Patient", status=400, json=outcome("_summary not supported"))
    assert c.server_time().isoformat() == "2026-11-26T23:40:09+00:00"
