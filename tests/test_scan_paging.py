"""The change scan over a server whose next links are offsets into live data (as sekmet's are): a resource
updated mid-walk shifts the offsets and one resource is skipped. Keyset paging on _lastUpdated does not
skip; links paging is the default (it follows the server's links exactly, as most servers expect)."""

from __future__ import annotations

import json
import operator
import re
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from fhir_cat2.fhir import FhirClient
from fhir_cat2.sources.server import ServerSource

BASE = "https://offset.test/fhir"
UNTIL = "2026-01-01T12:00:00.000Z"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)


class OffsetServer:
    """Observations in write order; paging by _offset over the live list; one resource is updated right
    after the first page was served (it moves to the end, with a later lastUpdated still in the window)."""

    def __init__(self, n: int = 7) -> None:
        self.rows = [self._obs(i, f"2026-01-01T10:00:0{i}.000Z") for i in range(n)]
        self.requests = 0

    @staticmethod
    def _obs(i: int, stamp: str, version: str = "1") -> dict:
        return {
            "resourceType": "Observation",
            "id": f"o{i}",
            "meta": {"versionId": version, "lastUpdated": stamp},
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/p{i}"},
        }

    def __call__(self, request):
        self.requests += 1
        query = parse_qsl(urlsplit(request.url).query)
        rows = list(self.rows)
        for name, value in query:
            if name == "_lastUpdated":
                op, stamp = value[:2], value[2:]
                compare = {"gt": operator.gt, "ge": operator.ge, "le": operator.le}[op]
                rows = [r for r in rows if compare(r["meta"]["lastUpdated"], stamp)]
        if ("_sort", "_lastUpdated") in query:
            rows.sort(key=lambda r: r["meta"]["lastUpdated"])
        params = dict(query)
        count, offset = int(params.get("_count", 20)), int(params.get("_offset", 0))
        page = rows[offset : offset + count]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in page],
        }
        if offset + count < len(rows):
            rest = [(k, v) for k, v in query if k != "_offset"] + [("_offset", str(offset + count))]
            bundle["link"] = [
                {"relation": "next", "url": f"{BASE}/Observation?" + "&".join(f"{k}={v}" for k, v in rest)}
            ]
        if self.requests == 1:  # someone amends o0 while we page
            self.rows = [*self.rows[1:], self._obs(0, "2026-01-01T11:00:00.000Z", "2")]
        return 200, {}, json.dumps(bundle)


def scan(paging: str) -> set[str]:
    server = OffsetServer()
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/Observation.*"), callback=server)
        source = ServerSource(FhirClient(BASE), ["Observation"], page_size=3, scan_paging=paging)
        return source.scan({"Observation": (None, UNTIL)}).patients


def test_links_paging_over_live_offsets_skips_a_resource():
    assert scan("links") == {f"p{i}" for i in range(7)} - {"p3"}  # the server's own paging loses p3


def test_keyset_paging_sees_every_changed_resource():
    assert scan("keyset") == {f"p{i}" for i in range(7)}


def test_keyset_paging_walks_a_tie_group_larger_than_a_page():
    server = OffsetServer()
    server.rows = [server._obs(i, "2026-01-01T10:00:00.000Z") for i in range(7)]
    server.requests = 1  # no update mid-walk
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/Observation.*"), callback=server)
        source = ServerSource(FhirClient(BASE), ["Observation"], page_size=3, scan_paging="keyset")
        assert source.scan({"Observation": (None, UNTIL)}).patients == {f"p{i}" for i in range(7)}
