"""The public Synthea corpus (../shared/corpus/smart-synthea-r4, skipped when absent) through a real server:
loaded by transaction (its POST entries turned into PUTs to the resources' own ids, so ids match replay),
synced, and compared with replay. Then the same data with our lines appended to Synthea's billing Claims:
the separate Claims are withdrawn, the billing Claims carry our lines once, and a rerun changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main
from fhir_cat2.emit.ids import claim_key
from fhir_cat2.sinks.planner import LINE_EXTENSION, comparable
from tests.support.sekmet_server import SekmetServer

from ..conftest import shared_path
from .conftest import EXTERNAL, LiveServer, corpus_bundle_as_puts, read_ndjson

pytestmark = [pytest.mark.live, pytest.mark.corpus]

PERIOD = ["--period", "2020", "--now", "2021-01-15T00:00:00Z"]
CPT = "http://www.ama-assn.org/go/cpt"


@pytest.fixture(scope="module")
def corpus() -> Path:
    return shared_path("corpus", "smart-synthea-r4")


@pytest.fixture(scope="module")
def corpus_server(corpus, fhir_server):
    """A server holding the corpus: a sekmet of its own (so the fixtures tests' data stay apart), or the
    external test server."""
    if EXTERNAL:
        server = fhir_server
        yield from _loaded(server, corpus)
        return
    with SekmetServer() as sekmet:
        yield from _loaded(LiveServer(sekmet.base_url, sekmet), corpus)


def _loaded(server: LiveServer, corpus: Path):
    for path in sorted(corpus.glob("*.json")):
        server.transaction(corpus_bundle_as_puts(json.loads(path.read_text())))
    yield server


@pytest.fixture(scope="module")
def replayed(corpus, tmp_path_factory) -> dict[str, dict[str, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("corpus-replay")
    assert main(["replay", str(corpus), "--out", str(out), *PERIOD]) in (0, 1)
    return {t: {r["id"]: r for r in read_ndjson(out / f"{t}.ndjson")} for t in ("Claim", "MeasureReport")}


def _sync(server: LiveServer, tmp_path: Path, name: str) -> dict[str, Any]:
    out = tmp_path / name
    code = main(
        [
            "sync",
            "--base-url",
            server.base_url,
            "--state",
            str(tmp_path / f"{name}.sqlite"),
            "--out",
            str(out),
            *PERIOD,
        ]
    )
    assert code in (0, 1)
    return json.loads((out / "run-report.json").read_text())


def test_corpus_sync_equals_replay_and_rerun_writes_nothing(corpus_server, replayed, tmp_path):
    report = _sync(corpus_server, tmp_path, "first")
    assert report["write_back"]["Claim"]["created"] == len(replayed["Claim"]) > 20
    assert report["write_back"].get("MeasureReport", {}).get("created", 0) == len(replayed["MeasureReport"])
    for resource_type, expected in replayed.items():
        on_server = {r["id"]: r for r in corpus_server.ours(resource_type)}
        assert set(expected) <= set(on_server)
        for resource_id, resource in expected.items():
            assert comparable(on_server[resource_id]) == comparable(resource), resource_id
    again = _sync(corpus_server, tmp_path, "first")
    assert all(set(c) == {"unchanged"} for c in again["write_back"].values()) and again["write_back"]["Claim"]


def test_append_to_billing_claims(corpus_server, replayed, tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_CAT2_WRITE__BILLING_CLAIMS", "append")
    monkeypatch.setenv("FHIR_CAT2_RUN__EMIT", "[claim]")
    report = _sync(corpus_server, tmp_path, "append")
    appended = report["write_back"]["Claim"].get("appended", 0)
    assert appended == len(replayed["Claim"])  # every Synthea visit has a billing Claim
    assert (
        report["write_back"]["Claim"].get("withdrawn", 0) + report["write_back"]["Claim"].get("created", 0)
        >= 0
    )
    billing = [
        c
        for c in corpus_server.search_all("Claim")
        if any(e.get("url") == LINE_EXTENSION for i in c.get("item", []) for e in i.get("extension", []))
    ]
    assert len(billing) == appended
    for claim in billing:
        sequences = [i["sequence"] for i in claim["item"]]
        assert len(sequences) == len(set(sequences))
        ours = [i for i in claim["item"] if i.get("extension")]
        expected = replayed["Claim"][
            next(
                cid
                for cid, c in replayed["Claim"].items()
                if c["identifier"][0]["value"] == ours[0]["extension"][0]["valueIdentifier"]["value"]
            )
        ]
        assert [i["productOrService"] for i in ours] == [i["productOrService"] for i in expected["item"]]
        diagnoses = {d["sequence"] for d in claim.get("diagnosis", [])}
        assert all(set(i.get("diagnosisSequence", [])) <= diagnoses for i in ours)
    separate = [c for c in corpus_server.ours("Claim") if c["status"] != "cancelled"]
    assert separate == []  # the separate Claims of the first test were withdrawn
    again = _sync(corpus_server, tmp_path, "append")
    assert set(again["write_back"]["Claim"]) == {"unchanged"}
    versions_after = {c["id"]: c["meta"]["versionId"] for c in billing}
    assert versions_after == {
        c["id"]: c["meta"]["versionId"]
        for c in corpus_server.search_all("Claim")
        if c["id"] in versions_after
    }


def test_append_mode_takes_our_lines_back_when_an_encounter_loses_its_codes(
    corpus_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("FHIR_CAT2_WRITE__BILLING_CLAIMS", "append")
    monkeypatch.setenv("FHIR_CAT2_RUN__EMIT", "[claim]")
    # Only the blood-pressure code rules, so that one visit's lines all hang on its BP readings.
    monkeypatch.setenv("FHIR_CAT2_RUN__RULES", str(_bp_only_rules(tmp_path)))
    _sync(corpus_server, tmp_path, "lines")
    bp_codes = {"3074F", "3075F", "3077F", "3078F", "3079F", "3080F"}
    billing = next(
        c
        for c in corpus_server.search_all("Claim")
        if (ours := [i for i in c.get("item", []) if i.get("extension")])
        and {i["productOrService"]["coding"][0]["code"] for i in ours} <= bp_codes
    )
    encounter = next(e["reference"] for i in billing["item"] for e in i.get("encounter", []))
    readings = corpus_server.search_all("Observation", encounter=encounter, code="http://loinc.org|55284-4")
    assert readings
    for reading in readings:
        reading.pop("meta")
        corpus_server.put({**reading, "status": "entered-in-error"})
    report = _sync(corpus_server, tmp_path, "lines")
    assert report["write_back"]["Claim"].get("withdrawn") == 1
    after = corpus_server.get(f"Claim/{billing['id']}")
    assert not any(i.get("extension") for i in after["item"])
    assert len(after["item"]) == len(billing["item"]) - len(
        [i for i in billing["item"] if i.get("extension")]
    )
    again = _sync(corpus_server, tmp_path, "lines")
    assert "withdrawn" not in again["write_back"]["Claim"]


def test_append_mode_keeps_each_programs_lines_on_a_shared_billing_claim(
    corpus_server, tmp_path, monkeypatch
):
    """hedis and mips-claims runs append to the same billing Claims: each run replaces only its own lines,
    so both sets stay and reruns write nothing (before, each run took every line of ours off first, so the
    two programs wiped each other's lines on every run)."""
    monkeypatch.setenv("FHIR_CAT2_WRITE__BILLING_CLAIMS", "append")
    monkeypatch.setenv("FHIR_CAT2_RUN__EMIT", "[claim]")
    _sync(corpus_server, tmp_path, "hedis")
    # mips-claims reads a visit's CPT/HCPCS code, as the rows of CMS's claims files list them; Synthea types
    # its encounters with SNOMED only: record the billed office visit code on the visits that carry hedis
    # lines, as an EHR does
    for claim in corpus_server.search_all("Claim"):
        if "hedis" not in _line_programs(claim):
            continue
        for ref in sorted({e["reference"] for i in claim["item"] for e in i.get("encounter", [])}):
            visit = corpus_server.get(ref)
            visit.pop("meta", None)
            visit["type"] = [*visit.get("type", []), {"coding": [{"system": CPT, "code": "99213"}]}]
            corpus_server.put(visit)
    monkeypatch.setenv("FHIR_CAT2_RUN__PROGRAM", "mips-claims")
    mips = _sync(corpus_server, tmp_path, "mips")
    assert mips["write_back"]["Claim"].get("appended", 0) > 10
    programs_on = [_line_programs(c) for c in corpus_server.search_all("Claim")]
    assert sum(1 for p in programs_on if p == {"hedis", "mips-claims"}) > 10
    assert set(_sync(corpus_server, tmp_path, "mips")["write_back"]["Claim"]) == {"unchanged"}
    monkeypatch.setenv("FHIR_CAT2_RUN__PROGRAM", "hedis")
    assert set(_sync(corpus_server, tmp_path, "hedis")["write_back"]["Claim"]) == {"unchanged"}


def _line_programs(claim: dict[str, Any]) -> set[str]:
    """The programs whose lines of ours a billing Claim carries (our Claim's key is derived from patient,
    encounter, program and period)."""
    patient = claim["patient"]["reference"].rpartition("/")[2]
    return {
        program
        for item in claim.get("item", [])
        for extension in item.get("extension", [])
        if extension.get("url") == LINE_EXTENSION
        for encounter in item.get("encounter", [])
        for program in ("hedis", "mips-claims")
        if claim_key(patient, encounter["reference"], program, 2020) == extension["valueIdentifier"]["value"]
    }


def test_a_debug_sync_of_the_corpus_logs_no_patient_data(corpus, corpus_server, tmp_path, caplog, capsys):
    import logging

    from tests.support.phi import collect, leaks

    phi = collect([corpus])
    caplog.set_level(logging.DEBUG)
    argv = ["--log-level", "DEBUG", "--log-format", "json", "sync", "--base-url", corpus_server.base_url]
    code = main([*argv, "--state", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "o"), *PERIOD])
    assert code in (0, 1)
    assert len(caplog.records) > 100
    for record in caplog.records:
        assert not leaks(record.getMessage() + repr(record.args), phi), record.getMessage()
    for line in capsys.readouterr().err.splitlines():
        assert not leaks(line, phi), line


def _bp_only_rules(tmp_path: Path) -> Path:
    """The shipped rules table cut down to the HEDIS blood-pressure code rules."""
    import yaml

    from fhir_cat2.rules import loader

    table = yaml.safe_load((Path(loader.__file__).parent.parent / "data" / "rules.yaml").read_text())
    keep = {"systolic_bp", "diastolic_bp"}
    small = {
        "version": table["version"],
        "name": "blood pressure only",
        "measurements": {k: v for k, v in table["measurements"].items() if k in keep},
        "code_rules": [
            r for r in table["code_rules"] if r.get("measurement") in keep and r["programs"] == ["hedis"]
        ],
    }
    path = tmp_path / "bp-rules.yaml"
    path.write_text(yaml.safe_dump(small))
    return path
