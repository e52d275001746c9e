"""BulkSource (sync --source bulk) without a server: a _since export names the affected patients, whose
contexts come from the search source; our own Claims are no change; error lines go to quarantine; a deleted
Encounter finds our Claim for it (its patient re-evaluated, the Claim offered for withdrawal); an earlier
run's export is resumed only when it asked for the same thing and has not expired."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from fhir_cat2.emit.ids import CLAIM_IDENTIFIER_SYSTEM, TAG_CODE, TAG_SYSTEM
from fhir_cat2.errors import BulkExportExpired, QuarantineKind
from fhir_cat2.fhir import SearchPage
from fhir_cat2.sources.bulk import Deletion, ExportJob, Manifest
from fhir_cat2.sources.bulk_source import BulkSource
from fhir_cat2.sources.files import InputItem, Rejected
from fhir_cat2.sources.records import Src
from fhir_cat2.sources.values import plain_resolver
from fhir_cat2.state import SyncState

SRC = Src("/files/1.ndjson", "line 1")
OURS = {"tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]}


def item(resource: dict[str, Any]) -> InputItem:
    return InputItem(resource, SRC, plain_resolver, resource["id"])


class FakeExporter:
    def __init__(self, items: list[Any], *, expired_status: bool = False) -> None:
        self.items = items
        self.kicked: list[dict[str, Any]] = []
        self.polled: list[str] = []
        self.cancelled: list[str] = []
        self.expired_status = expired_status
        self.on_progress = None

    def kick_off(self, level: str, **kick: Any) -> ExportJob:
        self.kicked.append({"level": level, **kick})
        return ExportJob(
            level=level,  # type: ignore[arg-type]
            status_url=f"http://fhir.test/status/{len(self.kicked)}",
            requested_at="2026-01-01T00:00:00+00:00",
            group=kick.get("group"),
            types=tuple(kick.get("types") or ()),
            since=kick.get("since"),
        )

    def poll(self, job: ExportJob) -> Manifest:
        self.polled.append(job.status_url)
        if self.expired_status and len(self.polled) == 1:
            raise BulkExportExpired("gone")
        return Manifest("2026-01-15T00:00:00.000Z", False, ())

    def download(self, manifest: Manifest, **kwargs: Any) -> Iterator[Any]:
        yield from self.items

    def cancel(self, status_url: str) -> bool:
        self.cancelled.append(status_url)
        return True


class FakeClient:
    def __init__(self, claims: list[dict[str, Any]]) -> None:
        self.claims = claims
        self.searches: list[tuple[str, list[tuple[str, str]]]] = []

    def search_pages(self, resource_type: str, params: list[tuple[str, str]]) -> Iterator[SearchPage]:
        self.searches.append((resource_type, params))
        entries = [{"resource": c} for c in self.claims]
        yield SearchPage(1, {"resourceType": "Bundle", "entry": entries}, entries)


TYPES = ("Patient", "Encounter", "Observation", "Claim")


class FakeSearch:
    def __init__(self, claims: list[dict[str, Any]] | None = None) -> None:
        self.types = list(TYPES)
        self.client = FakeClient(claims or [])
        self.asked: list[set[str]] = []

    def contexts(self, patient_ids: Any) -> Iterator[InputItem]:
        self.asked.append(set(patient_ids))
        yield item({"resourceType": "Patient", "id": "from-search"})


def source(exporter: FakeExporter, search: FakeSearch, state: SyncState | None = None) -> BulkSource:
    return BulkSource(
        exporter,  # type: ignore[arg-type]
        search,  # type: ignore[arg-type]
        level="system",
        group=None,
        state=state,
        note_key="bulk_export test",
    )


def test_a_since_export_names_the_patients_whose_whole_context_is_then_fetched():
    changed = [
        item({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}),
        item({"resourceType": "Claim", "id": "ours", "patient": {"reference": "Patient/p2"}, "meta": OURS}),
        Rejected(QuarantineKind.EXPORT_ERROR, SRC, "the server could not export some data"),
    ]
    search = FakeSearch()
    bulk = source(FakeExporter(changed), search)
    out = list(bulk.items("2026-01-01T00:00:00.000Z"))
    assert search.asked == [{"p1"}]  # our own Claim changes nothing clinical
    assert [type(i).__name__ for i in out] == ["Rejected", "InputItem"]  # the error, then the context
    assert out[1].resource["id"] == "from-search"
    assert dict(bulk.scan.changed) == {"Observation": 1}
    assert bulk.transaction_time == datetime(2026, 1, 15, tzinfo=UTC)


def test_a_full_export_streams_its_resources_and_collects_their_patients():
    resources = [
        item({"resourceType": "Patient", "id": "p1"}),
        item({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}),
    ]
    search = FakeSearch()
    bulk = source(FakeExporter(resources), search)
    assert list(bulk.items(None)) == resources
    assert search.asked == [] and bulk.scan.patients == {"p1"}


def test_a_deleted_encounter_offers_our_claim_for_it_and_re_evaluates_its_patient():
    claim = {
        "resourceType": "Claim",
        "id": "c1",
        "meta": OURS,
        "patient": {"reference": "Patient/p9"},
        "identifier": [{"system": CLAIM_IDENTIFIER_SYSTEM, "value": "key-1"}],
    }
    search = FakeSearch([claim])
    deleted = [Deletion("Encounter/e1", SRC), Deletion("Observation/o7", SRC)]
    bulk = source(FakeExporter(deleted), search)
    list(bulk.items("2026-01-01T00:00:00.000Z"))
    assert search.client.searches == [
        ("Claim", [("encounter", "Encounter/e1"), ("_tag", f"{TAG_SYSTEM}|{TAG_CODE}")])
    ]
    assert bulk.candidates == [("Claim", "key-1", "Encounter/e1")]
    assert search.asked == [{"p9"}]
    assert dict(bulk.deleted) == {"Encounter": 1, "Observation": 1}


def noted(state: SyncState, **changes: Any) -> None:
    job = ExportJob(
        level="system",
        status_url="http://fhir.test/status/earlier",
        requested_at="2026-01-01T00:00:00+00:00",
        types=TYPES,
        since=None,
    )
    for name, value in changes.items():
        setattr(job, name, value)
    state.note("bulk_export test", orjson.dumps(job.to_json()).decode())


def test_an_earlier_runs_export_is_resumed_without_a_kick_off(tmp_path):
    state = SyncState(str(tmp_path / "state.sqlite"))
    noted(state)
    exporter = FakeExporter([])
    bulk = source(exporter, FakeSearch(), state)
    list(bulk.items(None))
    assert exporter.kicked == [] and exporter.polled == ["http://fhir.test/status/earlier"]
    assert bulk.resumed is True
    bulk.finished()
    assert state.noted("bulk_export test") is None


@pytest.mark.parametrize(
    "changes",
    [
        {"expires": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
        {"since": "2025-12-01T00:00:00.000Z"},
        {"types": ("Patient",)},
    ],
    ids=["expired", "other-since", "other-types"],
)
def test_an_earlier_export_expired_or_for_something_else_is_not_resumed(tmp_path, changes, caplog):
    state = SyncState(str(tmp_path / "state.sqlite"))
    noted(state, **changes)
    exporter = FakeExporter([])
    with caplog.at_level(logging.INFO, logger="fhir_cat2"):
        list(source(exporter, FakeSearch(), state).items(None))
    assert len(exporter.kicked) == 1 and exporter.polled == ["http://fhir.test/status/1"]
    assert "kicking off" in caplog.text
    assert orjson.loads(state.noted("bulk_export test") or "{}")["status_url"] == "http://fhir.test/status/1"


def test_an_export_gone_from_the_server_when_resumed_is_kicked_off_again_and_says_so(tmp_path, caplog):
    state = SyncState(str(tmp_path / "state.sqlite"))
    noted(state)
    exporter = FakeExporter([], expired_status=True)
    with caplog.at_level(logging.WARNING, logger="fhir_cat2"):
        bulk = source(exporter, FakeSearch(), state)
        list(bulk.items(None))
    assert len(exporter.kicked) == 1 and bulk.resumed is False
    assert "expired; kicking off again" in caplog.text


def test_an_interrupted_run_cancels_the_export_and_forgets_it(tmp_path):
    state = SyncState(str(tmp_path / "state.sqlite"))
    exporter = FakeExporter([item({"resourceType": "Patient", "id": "p1"})])
    bulk = source(exporter, FakeSearch(), state)
    items = bulk.items(None)
    next(items)
    bulk.interrupted()
    assert exporter.cancelled == ["http://fhir.test/status/1"]
    assert state.noted("bulk_export test") is None
