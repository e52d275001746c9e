"""The Bulk Data ($export) client against HTTP edge cases a real server won't produce on demand (`responses`,
sleep patched so waits are asserted): kick-off, Retry-After and backoff on the status URL, X-Progress, the
wait limit, an expired export, cancel, the token only where it belongs, redirects to storage, deleted and
error files, a bad line, a reset mid-file, gzip, overlap of downloads with consumption, resume."""

from __future__ import annotations

import email.utils
import gzip
import io
import logging
import re
import threading
import time

import orjson
import pytest
import responses
from pydantic import SecretStr
from responses import matchers

from fhir_cat2.auth import BearerTokenAuth
from fhir_cat2.errors import (
    BulkExportError,
    BulkExportExpired,
    BulkExportTimeout,
    ConfigError,
    QuarantineKind,
    ServerUnavailableError,
)
from fhir_cat2.fhir import FhirClient, RetryPolicy
from fhir_cat2.sources.bulk import (
    BulkExport,
    Deletion,
    ExportJob,
    Manifest,
    ManifestFile,
    PollPolicy,
    progress_text,
)
from fhir_cat2.sources.files import InputItem, Rejected

BASE = "https://ehr.example.org/fhir"
STATUS = f"{BASE}/bulk-status/job1"
STORAGE = "https://storage.example.net"
TOKEN = "s3cr3t-token"


@pytest.fixture
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def client(token: bool = True) -> FhirClient:
    return FhirClient(
        BASE,
        auth=BearerTokenAuth(SecretStr(TOKEN)) if token else None,
        retry=RetryPolicy(attempts=4, backoff_base=1.0, backoff_max=30.0, retry_after_cap=120.0),
    )


def bulk(**kw) -> BulkExport:
    return BulkExport(client(), **kw)


def job() -> ExportJob:
    return ExportJob(level="system", status_url=STATUS, requested_at="2026-01-01T00:00:00+00:00")


def ndjson(*resources: dict) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in resources)


def obs(n: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
    }


def manifest(*files: dict, requires_token: bool = True, **extra) -> dict:
    return {
        "transactionTime": "2026-01-01T00:00:00Z",
        "request": f"{BASE}/$export",
        "requiresAccessToken": requires_token,
        "output": list(files),
        "error": [],
        **extra,
    }


def outcome(code: str, text: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def ids(items) -> list[str]:
    return [i.resource["id"] for i in items if isinstance(i, InputItem)]


def auth_header(call) -> str | None:
    return call.request.headers.get("Authorization")


# ------------------------------------------------------------------------------------------- kick-off


@pytest.mark.parametrize(
    ("level", "group", "path"),
    [
        ("system", None, "$export"),
        ("patient", None, "Patient/$export"),
        ("group", "g 1", "Group/g%201/$export"),
    ],
)
@responses.activate
def test_kick_off_asks_async_with_types_since_and_type_filters(level, group, path):
    responses.get(
        f"{BASE}/{path}",
        status=202,
        headers={"Content-Location": STATUS, "Expires": "Tue, 01 Jan 2030 00:00:00 GMT"},
        match=[
            matchers.header_matcher({"Prefer": "respond-async", "Accept": "application/fhir+json"}),
            matchers.query_param_matcher(
                {
                    "_type": "Patient,Observation",
                    "_since": "2025-06-01T00:00:00Z",
                    "_typeFilter": ["Observation?status=final", "Patient?active=true"],
                }
            ),
        ],
    )
    started = bulk().kick_off(
        level,
        group=group,
        types=["Patient", "Observation"],
        since="2025-06-01T00:00:00Z",
        type_filters=["Observation?status=final", "Patient?active=true"],
    )
    assert started.status_url == STATUS
    assert started.expires == "2030-01-01T00:00:00+00:00"
    assert (started.level, started.group, started.types) == (level, group, ("Patient", "Observation"))


@responses.activate
def test_kick_off_refused_with_an_operation_outcome_shows_its_issues_not_its_text(caplog):
    responses.get(
        f"{BASE}/$export", status=400, json=outcome("not-supported", "type MedicationRequest for Jane Doe")
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(BulkExportError) as raised:
        bulk().kick_off("system", types=["MedicationRequest"])
    assert "not-supported" in str(raised.value) and "HTTP 400" in str(raised.value)
    assert "Jane Doe" not in str(raised.value) and "Jane Doe" not in caplog.text
    assert raised.value.outcome is not None  # kept for whoever writes the quarantine/run record


@responses.activate
def test_kick_off_without_a_status_url_is_an_error():
    responses.get(f"{BASE}/$export", status=200, json={"resourceType": "Bundle"})
    with pytest.raises(BulkExportError, match="not 202 Accepted"):
        bulk().kick_off("system")


@responses.activate
def test_a_status_url_on_another_origin_is_refused():
    responses.get(f"{BASE}/$export", status=202, headers={"Content-Location": f"{STORAGE}/status/1"})
    with pytest.raises(BulkExportError, match="another origin"):
        bulk().kick_off("system")


# ------------------------------------------------------------------------------------------- polling


@responses.activate
def test_retry_after_in_seconds_is_honoured(sleeps):
    responses.get(STATUS, status=202, headers={"Retry-After": "7"})
    responses.get(STATUS, status=202, headers={"Retry-After": "120"})
    responses.get(STATUS, json=manifest())
    result = bulk().poll(job())
    assert sleeps == [7.0, 120.0]
    assert result.transaction_time == "2026-01-01T00:00:00Z"


@responses.activate
def test_retry_after_as_an_http_date_is_honoured(sleeps):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    responses.get(STATUS, status=202, headers={"Retry-After": when})
    responses.get(STATUS, json=manifest())
    bulk().poll(job())
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 30.0


@responses.activate
def test_without_retry_after_the_wait_doubles_up_to_its_cap(sleeps):
    for _ in range(6):
        responses.get(STATUS, status=202)
    responses.get(STATUS, json=manifest())
    bulk(poll=PollPolicy(first_wait=2.0, max_interval=10.0)).poll(job())
    assert sleeps == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


@responses.activate
def test_a_status_retry_after_of_zero_still_waits_the_least_wait(sleeps):
    responses.get(STATUS, status=202, headers={"Retry-After": "0"})
    responses.get(STATUS, json=manifest())
    bulk(poll=PollPolicy(first_wait=1.5)).poll(job())
    assert sleeps == [1.5]


@responses.activate
def test_x_progress_goes_to_the_callback_and_the_log_without_urls(sleeps, caplog):
    seen: list[str] = []
    responses.get(STATUS, status=202, headers={"X-Progress": "50% done", "Retry-After": "1"})
    responses.get(
        STATUS,
        status=202,
        headers={
            "X-Progress": "writing https://internal.example/x?patient=123 " + "y" * 200,
            "Retry-After": "1",
        },
    )
    responses.get(STATUS, json=manifest())
    with caplog.at_level(logging.INFO, logger="fhir_cat2.bulk"):
        bulk(on_progress=seen.append).poll(job())
    assert seen[0] == "50% done"
    assert seen[1].startswith("writing <url> yyy") and len(seen[1]) == 80
    assert "50% done" in caplog.text
    assert "internal.example" not in caplog.text and "patient=123" not in caplog.text


def test_progress_text_drops_queries_and_control_characters():
    assert progress_text("step 2\x1b[31m of 3 ?_id=abc&x=1") == "step 2 [31m of 3 <url>"


@responses.activate
def test_the_wait_limit_raises_a_timeout_after_one_last_poll(sleeps):
    responses.get(STATUS, status=202, headers={"Retry-After": "4"})
    with pytest.raises(BulkExportTimeout, match="still running after 10s"):
        bulk(poll=PollPolicy(max_wait=10.0)).poll(job())
    assert sleeps == [4.0, 4.0, 2.0]
    assert len(responses.calls) == 4
    assert issubclass(BulkExportTimeout, ServerUnavailableError)  # exit 4 as the CLI maps it today


@pytest.mark.parametrize("status", [404, 410])
@responses.activate
def test_an_expired_export_says_to_kick_off_again(status, sleeps):
    responses.get(STATUS, status=status, json=outcome("not-found", "No export job1"))
    with pytest.raises(BulkExportExpired, match="kick off a new export"):
        bulk().poll(job())
    assert sleeps == []


@responses.activate
def test_a_503_and_a_429_on_the_status_url_are_retried_with_their_retry_after(sleeps):
    responses.get(STATUS, status=503, headers={"Retry-After": "5"})
    responses.get(STATUS, status=429, headers={"Retry-After": "9"})
    responses.get(STATUS, json=manifest())
    bulk().poll(job())
    assert sleeps == [5.0, 9.0]


@responses.activate
def test_a_failed_export_raises_with_the_outcome_summarised():
    responses.get(STATUS, status=400, json=outcome("too-costly", "export of Patient/123 too big"))
    with pytest.raises(BulkExportError, match="too-costly") as raised:
        bulk().poll(job())
    assert "Patient/123" not in str(raised.value)


@responses.activate
def test_expires_from_the_status_answer_is_kept_on_the_job():
    responses.get(STATUS, json=manifest(), headers={"Expires": "Wed, 02 Dec 2026 10:00:00 GMT"})
    running = job()
    bulk().poll(running)
    assert running.expires == "2026-12-02T10:00:00+00:00"
    from datetime import UTC, datetime

    assert not running.expired(datetime(2026, 12, 2, 9, 59, tzinfo=UTC))
    assert running.expired(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))


@responses.activate
def test_cancel_sends_delete_to_the_status_url():
    responses.delete(STATUS, status=202, json=outcome("informational", "cancelled"))
    assert bulk().cancel(STATUS) is True
    assert responses.calls[0].request.method == "DELETE"
    assert auth_header(responses.calls[0]) == f"Bearer {TOKEN}"


@responses.activate
def test_cancel_of_an_export_the_server_no_longer_knows_is_false():
    responses.delete(STATUS, status=404, json=outcome("not-found", "No such export"))
    assert bulk().cancel(STATUS) is False


# ------------------------------------------------------------------------------------------- downloads


def one_file_manifest(url: str, requires_token: bool) -> Manifest:
    return Manifest.from_json(
        manifest({"type": "Observation", "url": url}, requires_token=requires_token), STATUS
    )


@pytest.mark.parametrize("requires_token", [False, True])
@responses.activate
def test_the_token_goes_with_files_only_when_the_manifest_requires_it(requires_token):
    url = f"{BASE}/bulk-files/job1/Observation.ndjson"
    responses.get(
        url,
        body=ndjson(obs(1), obs(2)),
        match=[matchers.header_matcher({"Accept": "application/fhir+ndjson"})],
    )
    items = list(bulk().download(one_file_manifest(url, requires_token)))
    assert ids(items) == ["o1", "o2"]
    assert auth_header(responses.calls[0]) == (f"Bearer {TOKEN}" if requires_token else None)


@responses.activate
def test_a_307_to_storage_is_followed_without_the_token(caplog):
    url = f"{BASE}/bulk-files/job1/Observation.ndjson"
    stored = f"{STORAGE}/exports/Observation.ndjson?sig=abc"
    responses.get(url, status=307, headers={"Location": stored})
    responses.get(stored, body=ndjson(obs(1)))
    with caplog.at_level(logging.DEBUG):
        items = list(bulk().download(one_file_manifest(url, True)))
    assert "sig=abc" not in caplog.text and TOKEN not in caplog.text
    assert ids(items) == ["o1"]
    assert auth_header(responses.calls[0]) == f"Bearer {TOKEN}"
    assert responses.calls[1].request.url == stored
    assert auth_header(responses.calls[1]) is None
    assert items[0].src.file == "/fhir/bulk-files/job1/Observation.ndjson"


@responses.activate
def test_a_file_on_another_origin_is_refused_unless_allowed():
    url = f"{STORAGE}/exports/Observation.ndjson?sig=abc"
    with pytest.raises(ConfigError, match=r"storage\.example\.net:443"):
        list(bulk().download(one_file_manifest(url, True)))
    assert len(responses.calls) == 0
    responses.get(url, body=ndjson(obs(1)))
    assert ids(bulk(file_hosts=[STORAGE]).download(one_file_manifest(url, True))) == ["o1"]
    assert auth_header(responses.calls[0]) is None  # a file host never gets the server's token
    assert ids(bulk(allow_any_file_host=True).download(one_file_manifest(url, True))) == ["o1"]


@responses.activate
def test_deleted_and_error_files_become_deletions_and_quarantine_entries(caplog):
    out, err, gone = (f"{BASE}/files/{n}" for n in ("Observation.ndjson", "errors.ndjson", "deleted.ndjson"))
    responses.get(out, body=ndjson(obs(1)))
    responses.get(err, body=ndjson(outcome("exception", "could not read Observation for Jane Doe")))
    deleted_bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Observation/o9"}},
            {"request": {"method": "DELETE", "url": f"{BASE}/Condition/c3"}},
            {"request": {"method": "GET", "url": "Patient/p1"}},
        ],
    }
    responses.get(gone, body=ndjson(deleted_bundle))
    body = manifest(
        {"type": "Observation", "url": out},
        error=[{"type": "OperationOutcome", "url": err}],
        deleted=[{"type": "Bundle", "url": gone}],
    )
    with caplog.at_level(logging.DEBUG):
        items = list(bulk().download(Manifest.from_json(body, STATUS)))
    assert ids(items) == ["o1"]
    deletions = [i for i in items if isinstance(i, Deletion)]
    assert [d.ref for d in deletions] == ["Observation/o9", "Condition/c3"]
    assert deletions[0].src.position == "line 1 entry[0]"
    rejected = [i for i in items if isinstance(i, Rejected)]
    kinds = sorted(r.kind for r in rejected)
    assert kinds == [QuarantineKind.EXPORT_ERROR, QuarantineKind.MALFORMED_BUNDLE]
    error = next(r for r in rejected if r.kind is QuarantineKind.EXPORT_ERROR)
    assert error.src.file == "/fhir/files/errors.ndjson" and error.src.position == "line 1"
    assert "exception" in error.reason and "Jane Doe" in error.reason  # quarantine.ndjson keeps the words
    assert "Jane Doe" not in caplog.text


@responses.activate
def test_a_bad_line_is_rejected_alone_and_the_rest_of_the_file_is_read():
    url = f"{BASE}/files/Observation.ndjson"
    responses.get(url, body=ndjson(obs(1)) + b'{"resourceType": "Observ\n' + ndjson(obs(3)))
    items = list(bulk().download(one_file_manifest(url, False)))
    assert ids(items) == ["o1", "o3"]
    [bad] = [i for i in items if isinstance(i, Rejected)]
    assert bad.kind is QuarantineKind.INVALID_JSON and bad.src.position == "line 2"


class ResettingBody(io.RawIOBase):
    """A body that sends ``cut`` bytes and then fails as a reset connection does."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut, self.pos = data, cut, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.pos >= self.cut:
            raise ConnectionResetError(104, "Connection reset by peer")
        n = min(len(buffer), self.cut - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@responses.activate
def test_a_reset_mid_file_reads_it_again_without_duplicating_lines(sleeps, caplog):
    url = f"{BASE}/files/Observation.ndjson"
    data = ndjson(*(obs(n) for n in range(1, 2001)))
    cut = data.index(b'"o1500"') + 3  # in the middle of line 1500, past the first chunks
    assert cut > 2 * 64 * 1024  # so lines were handed on before the reset
    responses.get(url, body=io.BufferedReader(ResettingBody(data, cut), buffer_size=4096))
    responses.get(url, body=data)
    with caplog.at_level(logging.WARNING, logger="fhir_cat2.bulk"):
        items = list(bulk().download(one_file_manifest(url, False)))
    [handed_on] = re.findall(r"connection broken after line (\d+)", caplog.text)
    assert 0 < int(handed_on) < 1500
    assert ids(items) == [f"o{n}" for n in range(1, 2001)]
    assert [i.src.position for i in items] == [f"line {n}" for n in range(1, 2001)]
    assert len(responses.calls) == 2 and sleeps == [1.0]


@responses.activate
def test_a_file_that_keeps_breaking_ends_the_download(sleeps):
    url = f"{BASE}/files/Observation.ndjson"
    data = ndjson(obs(1), obs(2))
    for _ in range(4):
        responses.get(url, body=io.BufferedReader(ResettingBody(data, 10)))
    with pytest.raises(ServerUnavailableError, match="broke mid-file 4 times"):
        list(bulk().download(one_file_manifest(url, False)))


@responses.activate
def test_a_429_on_a_file_is_retried_after_its_retry_after(sleeps):
    url = f"{BASE}/files/Observation.ndjson"
    responses.get(url, status=429, headers={"Retry-After": "3"})
    responses.get(url, body=ndjson(obs(1)))
    assert ids(bulk().download(one_file_manifest(url, False))) == ["o1"]
    assert sleeps == [3.0]


@responses.activate
def test_a_file_gone_mid_export_says_to_kick_off_again():
    url = f"{BASE}/files/Observation.ndjson"
    responses.get(url, status=404, json=outcome("not-found", "No such file"))
    with pytest.raises(BulkExportExpired, match="kick off a new export"):
        list(bulk().download(one_file_manifest(url, False)))


@responses.activate
def test_gzip_by_content_encoding_and_a_gzip_body_are_both_read():
    encoded, plain_gz = f"{BASE}/files/a.ndjson", f"{BASE}/files/b.ndjson.gz"
    responses.get(encoded, body=gzip.compress(ndjson(obs(1), obs(2))), headers={"Content-Encoding": "gzip"})
    responses.get(plain_gz, body=gzip.compress(ndjson(obs(3))), content_type="application/gzip")
    body = manifest({"type": "Observation", "url": encoded}, {"type": "Observation", "url": plain_gz})
    items = list(bulk(concurrency=1).download(Manifest.from_json(body, STATUS)))
    assert ids(items) == ["o1", "o2", "o3"]


class GatedBody(io.RawIOBase):
    """A body that sends its first line, then waits for ``gate`` before the rest."""

    def __init__(self, data: bytes, gate: threading.Event) -> None:
        self.data, self.gate, self.pos = data, gate, 0
        self.first = data.index(b"\n") + 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.pos == self.first and not self.gate.wait(timeout=20):
            raise ConnectionResetError(104, "the gate was never opened")
        end = self.first if self.pos < self.first else len(self.data)
        n = min(len(buffer), end - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@responses.activate
def test_items_flow_to_the_consumer_while_other_files_still_download():
    slow, quick = f"{BASE}/files/slow.ndjson", f"{BASE}/files/quick.ndjson"
    gate = threading.Event()
    responses.get(slow, body=io.BufferedReader(GatedBody(ndjson(obs(1), obs(2)), gate), buffer_size=16))
    responses.get(quick, body=ndjson(obs(9)))
    body = manifest({"type": "Observation", "url": slow}, {"type": "Observation", "url": quick})
    got: list[str] = []
    gate_open_when_o9_arrived = None
    for item in bulk(concurrency=2).download(Manifest.from_json(body, STATUS)):
        got.append(item.resource["id"])
        if item.resource["id"] == "o9":
            gate_open_when_o9_arrived = gate.is_set()
            gate.set()  # the slow file finishes only once the quick one's item has reached us
    assert gate_open_when_o9_arrived is False
    assert sorted(got) == ["o1", "o2", "o9"]


@responses.activate
def test_closing_the_download_early_stops_the_workers():
    urls = [f"{BASE}/files/{n}.ndjson" for n in range(6)]
    for url in urls:
        responses.get(url, body=ndjson(*(obs(n) for n in range(3000))))
    body = manifest(*({"type": "Observation", "url": u} for u in urls))
    before = threading.active_count()
    downloads = bulk(concurrency=3).download(Manifest.from_json(body, STATUS))
    next(downloads)
    downloads.close()
    assert threading.active_count() == before


# ------------------------------------------------------------------------------------------- resume


@responses.activate
def test_a_resumed_job_polls_its_status_url_and_skips_the_files_already_done():
    first, second = f"{BASE}/files/1.ndjson", f"{BASE}/files/2.ndjson"
    responses.get(
        STATUS, json=manifest({"type": "Observation", "url": first}, {"type": "Observation", "url": second})
    )
    responses.get(first, body=ndjson(obs(1)))
    responses.get(second, body=ndjson(obs(2)))
    running = job()
    exporter = bulk(concurrency=1)
    downloads = exporter.download(exporter.poll(running), on_file_done=running.mark_done)
    assert ids([next(downloads)]) == ["o1"]
    assert ids([next(downloads)]) == ["o2"]  # the first file is done once the consumer asks past it
    downloads.close()  # the run is killed before the second file is marked done
    saved = orjson.loads(orjson.dumps(running.to_json()))
    assert len(saved["files_done"]) == 1

    resumed = ExportJob.from_json(saved)
    assert resumed == running
    exporter = bulk()
    items = list(
        exporter.download(exporter.poll(resumed), done=resumed.files_done, on_file_done=resumed.mark_done)
    )
    assert ids(items) == ["o2"]
    assert [c.request.url for c in responses.calls].count(first) == 1
    assert sorted(resumed.files_done) == sorted(
        ManifestFile("output", "Observation", u).key for u in (first, second)
    )
    assert not any("kick" in c.request.url or "$export" in c.request.url for c in responses.calls)


def test_a_file_key_keeps_no_part_of_a_signed_url():
    file = ManifestFile("output", "Observation", f"{STORAGE}/x.ndjson?sig=abcdef")
    assert "abcdef" not in file.key and file.label == "/x.ndjson"
