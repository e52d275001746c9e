"""Integration tests against a real FHIR R4 server.

By default the suite starts sekmet-fhir 0.1.1 itself (its own venv, in-memory database, payer simulator
off; see tests/support/sekmet_server.py) once per session and stops it at the end. Set
``FHIR_CAT2_TEST_BASE_URL`` to run the same tests against any other server (it must accept client-chosen
ids and transactions; the tests only delete resources tagged as fhir-cat2 write-backs).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_cat2.emit.ids import TAG_CODE, TAG_SYSTEM
from tests.support.sekmet_server import SekmetServer

from ..conftest import ROOT

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
EXTERNAL = os.environ.get("FHIR_CAT2_TEST_BASE_URL")


@dataclass
class LiveServer:
    base_url: str
    sekmet: SekmetServer | None

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.base_url}/{path}",
            params=params,
            headers={**FHIR_JSON, "Prefer": "handling=strict"},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:500]
        return response.json()

    def search_all(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        out = []
        bundle = self.get(resource_type, _count="1000", **params)
        while True:
            out += [
                e["resource"]
                for e in bundle.get("entry", [])
                if e.get("search", {}).get("mode", "match") == "match"
            ]
            next_url = next(
                (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None
            )
            if not next_url:
                return out
            bundle = requests.get(next_url, headers=FHIR_JSON, timeout=30).json()

    def transaction(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = requests.post(self.base_url, data=json.dumps(bundle), headers=FHIR_JSON, timeout=120)
        assert response.status_code == 200, response.text[:1000]
        return response.json()

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{resource['resourceType']}/{resource['id']}"
        response = requests.put(url, data=json.dumps(resource), headers=FHIR_JSON, timeout=30)
        assert response.status_code in (200, 201), response.text[:500]
        return response.json() if response.content else {}

    def ours(self, resource_type: str) -> list[dict[str, Any]]:
        """Every fhir-cat2 write-back of a type on the server."""
        return self.search_all(resource_type, _tag=f"{TAG_SYSTEM}|{TAG_CODE}")

    def delete_ours(self) -> None:
        """Remove fhir-cat2 write-backs so a test starts from clinical data only."""
        entries = [
            {"request": {"method": "DELETE", "url": f"{r['resourceType']}/{r['id']}"}}
            for t in ("Claim", "MeasureReport", "Bundle")
            for r in self.ours(t)
        ]
        for start in range(0, len(entries), 500):
            self.transaction(entries[start : start + 500])


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[LiveServer]:
    if EXTERNAL:
        yield LiveServer(EXTERNAL.rstrip("/"), None)
        return
    with SekmetServer() as server:
        yield LiveServer(server.base_url, server)


def as_put_entries(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "fullUrl": f"urn:uuid:{r['id']}" if _uuid(r["id"]) else f"{r['resourceType']}/{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]


def _uuid(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


def fixture_resources() -> list[dict[str, Any]]:
    """Every resource of fixtures/ (transaction Bundles and bulk NDJSON)."""
    resources: list[dict[str, Any]] = []
    for path in sorted((ROOT / "fixtures" / "patients").glob("*.json")):
        resources += [e["resource"] for e in json.loads(path.read_text())["entry"]]
    for path in sorted((ROOT / "fixtures" / "bulk").iterdir()):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        resources += [json.loads(line) for line in data.splitlines() if line.strip()]
    return resources


def load_fixtures(server: LiveServer) -> None:
    for path in sorted((ROOT / "fixtures" / "patients").glob("*.json")):
        server.transaction(json.loads(path.read_text())["entry"])  # they are PUT transactions already
    bulk = [
        r
        for r in fixture_resources()
        if r["resourceType"] in ("Patient", "Encounter", "Condition", "Observation")
    ]
    ids = {
        (r["resourceType"], r["id"])
        for path in (ROOT / "fixtures" / "patients").glob("*.json")
        for r in (e["resource"] for e in json.loads(path.read_text())["entry"])
    }
    server.transaction(as_put_entries([r for r in bulk if (r["resourceType"], r["id"]) not in ids]))


def corpus_bundle_as_puts(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """A Synthea transaction (POST entries, urn:uuid references) as PUTs to the resources' own ids, so the
    server keeps the ids replay sees; the server resolves the urn:uuid references to those ids."""
    entries = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if not resource.get("id"):
            resource = {**resource, "id": entry["fullUrl"].removeprefix("urn:uuid:")}
        entries.append(
            {
                "fullUrl": entry["fullUrl"],
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
        )
    return entries


def fixture_patient_ids() -> set[str]:
    return {r["id"] for r in fixture_resources() if r["resourceType"] == "Patient"}


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
