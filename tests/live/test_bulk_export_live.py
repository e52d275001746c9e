"""The Bulk Data client against a real server (sekmet implements $export at system, Patient and Group level
with _type, _since and _typeFilter): what an export gives is what a search gives; cancel ends it there."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from fhir_cat2.errors import BulkExportExpired
from fhir_cat2.fhir import FhirClient
from fhir_cat2.sources.bulk import BulkExport, Deletion, ExportJob, Manifest, PollPolicy
from fhir_cat2.sources.files import InputItem, Rejected

from .conftest import EXTERNAL, LiveServer, fixture_patient_ids, load_fixtures

pytestmark = pytest.mark.live

TYPES = ["Patient", "Encounter", "Condition", "Observation"]
GROUP_ID = "fhir-cat2-bulk-test"


@pytest.fixture(scope="module")
def loaded(fhir_server: LiveServer) -> LiveServer:
    load_fixtures(fhir_server)
    return fhir_server


@pytest.fixture
def exporter(loaded: LiveServer):
    client = FhirClient(loaded.base_url)
    yield BulkExport(client, poll=PollPolicy(first_wait=0.2, max_interval=1.0, max_wait=120.0))
    client.close()


def exported(
    exporter: BulkExport, **kick: Any
) -> tuple[ExportJob, Manifest, dict[tuple[str, str], dict[str, Any]]]:
    job = exporter.kick_off(**kick)
    manifest = exporter.poll(job)
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    for item in exporter.download(manifest, on_file_done=job.mark_done):
        assert not isinstance(item, Rejected | Deletion), item
        assert isinstance(item, InputItem)
        key = (item.resource["resourceType"], item.resource["id"])
        assert key not in resources, f"{key} exported twice"
        resources[key] = item.resource
    assert len(job.files_done) == len(manifest.files)
    return job, manifest, resources


def searched(server: LiveServer, types: list[str], **params: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["resourceType"], r["id"]): r for t in types for r in server.search_all(t, **params)}


def comparable(resources: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {key: json.dumps(r, sort_keys=True) for key, r in resources.items()}


def test_a_system_export_gives_exactly_what_searches_give(loaded, exporter):
    job, manifest, resources = exported(exporter, level="system", types=TYPES)
    assert job.expires is not None and manifest.transaction_time
    assert manifest.requires_access_token is False  # sekmet runs without auth here
    assert {f.type for f in manifest.output} <= set(TYPES)
    assert sum(f.count or 0 for f in manifest.output) == len(resources)
    assert comparable(resources) == comparable(searched(loaded, TYPES))
    assert {pid for (t, pid) in resources if t == "Patient"} >= fixture_patient_ids()


def test_a_group_export_gives_its_members_compartments(loaded, exporter):
    members = sorted(fixture_patient_ids())[:3]
    loaded.put(
        {
            "resourceType": "Group",
            "id": GROUP_ID,
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in members],
        }
    )
    try:
        _, _, resources = exported(exporter, level="group", group=GROUP_ID, types=TYPES)
    finally:
        requests.delete(f"{loaded.base_url}/Group/{GROUP_ID}", timeout=30)
    expected = searched(loaded, ["Patient"], _id=",".join(members))
    for resource_type, param in (
        ("Encounter", "subject"),
        ("Condition", "subject"),
        ("Observation", "subject"),
    ):
        expected |= searched(loaded, [resource_type], **{param: ",".join(f"Patient/{p}" for p in members)})
    assert comparable(resources) == comparable(expected)
    assert {pid for (t, pid) in resources if t == "Patient"} == set(members)


def test_a_patient_export_with_a_type_filter_gives_the_filtered_search(loaded, exporter):
    _, _, resources = exported(
        exporter, level="patient", types=["Observation"], type_filters=["Observation?status=final"]
    )
    assert resources
    assert comparable(resources) == comparable(searched(loaded, ["Observation"], status="final"))


@pytest.mark.skipif(bool(EXTERNAL), reason="amends a fixture Observation on the server")
def test_a_since_export_gives_only_what_changed(loaded, exporter):
    observation = loaded.get("Observation", _count="1")["entry"][0]["resource"]
    amended = {**observation, "status": "amended"}
    loaded.put(amended)
    since = loaded.get(f"Observation/{observation['id']}")["meta"]["lastUpdated"]
    try:
        _, _, resources = exported(exporter, level="system", types=TYPES, since=since)
        assert list(resources) == [("Observation", observation["id"])]
        assert resources["Observation", observation["id"]]["status"] == "amended"
    finally:
        loaded.put(observation)


def test_cancel_ends_the_export_on_the_server(loaded, exporter):
    job = exporter.kick_off("system", types=TYPES)
    assert exporter.cancel(job.status_url) is True
    with pytest.raises(BulkExportExpired, match="kick off a new export"):
        exporter.poll(job)
    assert exporter.cancel(job.status_url) is False
