"""replay with worker processes writes byte for byte what a single process writes."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from fhir_cat2 import pipeline as pipeline_module
from fhir_cat2.cli import main
from fhir_cat2.executors import forked, pool
from fhir_cat2.sources import grouping

from .conftest import ROOT

OUTPUTS = ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson", "unrecognised-codes.csv")
VOLATILE = {"duration_seconds", "started_at", "finished_at", "run_id"}
"""Run-report fields that differ between any two runs."""

pytestmark = pytest.mark.skipif(not pool.can_fork(), reason="worker processes need fork")


@pytest.fixture
def small_parts(monkeypatch):
    """Replay in workers whatever the input's size, in parts and map tasks of a few kilobytes (the fixtures
    then make several map tasks, and reduce buckets of a few patients each)."""
    from fhir_cat2.sources import files

    monkeypatch.setattr(forked, "MIN_INGEST_BYTES", 0)
    monkeypatch.setattr(forked, "TASK_BYTES", 6_000)
    monkeypatch.setattr(files, "PART_BYTES", 3_000)


@pytest.fixture
def data(tmp_path):
    """The fixtures plus input that goes to quarantine (ingest time and evaluation time)."""
    folder = tmp_path / "in"
    shutil.copytree(ROOT / "fixtures", folder)
    (folder / "broken.json").write_text("{not json")
    bundle = json.loads((folder / "patients" / "a1c-poor.json").read_text())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["valueQuantity"].update(
                unit="mg/dL", code="mg/dL"
            )  # unconvertible: quarantined later
    (folder / "patients" / "a1c-poor.json").write_text(json.dumps(bundle))
    return folder


def _replay(source, out, workers, *extra):
    """Replay ``source`` into ``out`` with ``workers``: the three outputs and the run report's stable
    fields; the run must complete with quarantined input (exit 1)."""
    argv = ["replay", str(source), "--out", str(out), "--now", "2026-01-15T00:00:00Z", "--workers", workers]
    assert main([*argv, *extra]) == 1
    result = {name: (out / name).read_bytes() for name in OUTPUTS}
    for name in ("Bundle.ndjson", "gaps.csv"):  # --emit gaps
        if (out / name).exists():
            result[name] = (out / name).read_bytes()
    report = json.loads((out / "run-report.json").read_text())
    result["report"] = {k: v for k, v in report.items() if k not in VOLATILE}
    return result


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--program", "mips-claims", "--period", "2025"],
        ["--report", "both"],
        ["--concept-maps", str(ROOT / "fixtures" / "concept-maps")],
        ["--emit", "claim,measure-report,gaps"],
    ],
)
def test_workers_write_the_same_bytes(tmp_path, data, small_parts, extra):
    runs = {w: _replay(data, tmp_path / f"out-{w}", w, *extra) for w in ("1", "2", "3")}
    if "--emit" in extra:
        assert runs["1"]["Bundle.ndjson"].count(b"\n") >= 10 and runs["1"]["gaps.csv"].count(b"\n") >= 50
    assert runs["1"]["quarantine.ndjson"].count(b"\n") >= 2
    assert runs["1"]["unrecognised-codes.csv"].count(b"\n") >= 2  # counted in the map workers, merged here
    assert runs["1"] == runs["2"] == runs["3"]


def test_workers_read_a_spilled_grouper(tmp_path, data, small_parts, monkeypatch):
    spills = tmp_path / "spills"
    spills.mkdir()
    real_spill = grouping.PatientGrouper._spill

    def spill(self):  # leaves a mark a forked worker's spill can be seen by
        (spills / f"{os.getpid()}-{len(list(spills.iterdir()))}").touch()
        real_spill(self)

    monkeypatch.setattr(grouping.PatientGrouper, "_spill", spill)
    single = _replay(data, tmp_path / "out-1", "1")
    assert not list(spills.iterdir())
    monkeypatch.setattr(pipeline_module, "DEFAULT_BUDGET", 7)
    assert _replay(data, tmp_path / "out-2", "2") == single
    assert {mark.name.split("-")[0] for mark in spills.iterdir()} - {str(os.getpid())}  # spilled in workers


def test_workers_must_be_positive(tmp_path, capsys):
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ parallel ingest


def _bundles_as_ndjson(folder, target):
    """The fixtures' resources as bulk-export NDJSON (one file per type), with a blank line, a CRLF line,
    a line that is not JSON and a last line without its newline: what a cut between parts must not change."""
    by_type: dict[str, list[bytes]] = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            document = json.loads(path.read_text())
        except ValueError:
            continue
        entries = document.get("entry", []) if document.get("resourceType") == "Bundle" else []
        targets = {}  # urn:uuid fullUrls become Type/id references, as a bulk export has them
        for entry in entries:
            resource = entry.get("resource")
            if isinstance(resource, dict) and str(entry.get("fullUrl", "")).startswith("urn:uuid:"):
                resource.setdefault("id", entry["fullUrl"].removeprefix("urn:uuid:"))
                targets[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
        for entry in entries:
            resource = entry.get("resource")
            if isinstance(resource, dict):
                text = json.dumps(resource)
                for full_url, reference in targets.items():
                    text = text.replace(f'"{full_url}"', f'"{reference}"')
                by_type.setdefault(resource["resourceType"], []).append(text.encode())
    target.mkdir()
    for resource_type, lines in by_type.items():
        body = b"\n".join(lines)
        if resource_type == "Observation":
            middle = len(lines) // 2
            body = b"\n".join([*lines[:middle], b"", b"{broken", lines[middle] + b"\r", *lines[middle + 1 :]])
        (target / f"{resource_type}.ndjson").write_bytes(body)  # no newline after the last line
    return target


@pytest.mark.parametrize("layout", ["bundles", "ndjson"])
def test_parallel_ingest_gives_the_same_bytes(tmp_path, data, small_parts, layout, monkeypatch):
    taken = tmp_path / "taken"  # a file per map task a worker process read
    taken.mkdir()
    real_task = forked.map_task

    def recorded(state, parts, path):
        (taken / f"{os.getpid()}-{os.path.basename(path)}").touch()
        return real_task(state, parts, path)

    monkeypatch.setattr(forked, "map_task", recorded)
    source = data if layout == "bundles" else _bundles_as_ndjson(data, tmp_path / "bulk")
    runs = {w: _replay(source, tmp_path / f"out-{w}", w) for w in ("1", "2", "3")}
    assert runs["1"]["Claim.ndjson"].count(b"\n") >= 5
    if layout == "ndjson":
        assert b"line " in runs["1"]["quarantine.ndjson"]  # the broken line, by its number in the whole file
    assert runs["1"] == runs["2"] == runs["3"]
    pids = {name.name.partition("-")[0] for name in taken.iterdir()}
    assert len(list(taken.iterdir())) >= 4  # two runs with workers, each of several tasks
    assert str(os.getpid()) not in pids  # read in worker processes, not here


def _items(iterable):
    from fhir_cat2.sources.files import Rejected

    out = []
    for item in iterable:
        if isinstance(item, Rejected):
            out.append(("rejected", str(item.src), item.reason))
        else:
            out.append((item.resource_id, str(item.src), item.resource))
    return out


@pytest.mark.parametrize("part_bytes", [1, 200, 1_500, 3_000, 10**9])
def test_ndjson_parts_read_as_the_whole_file(tmp_path, data, part_bytes):
    from fhir_cat2.sources.files import plan_parts, read_file, read_part

    bulk = _bundles_as_ndjson(data, tmp_path / "bulk")
    paths = sorted(bulk.iterdir())
    whole = [item for path in paths for item in _items(read_file(path))]
    parts = plan_parts(paths, part_bytes)
    assert sum(part.size for part in parts) == sum(path.stat().st_size for path in paths)
    if part_bytes < 3_000:
        assert len(parts) > len(paths)
    assert [item for part in parts for item in _items(read_part(part))] == whole
    assert any(entry[0] == "rejected" and " line " in entry[1] for entry in whole)


@pytest.mark.parametrize("how", ["raises", "dies"])
@pytest.mark.parametrize("task", ["map_task", "reduce_task"])
def test_a_failed_worker_task_is_done_here(tmp_path, data, small_parts, monkeypatch, caplog, task, how):
    """A task that raises in a worker, or whose worker process dies, is done in the parent: same bytes."""
    single = _replay(data, tmp_path / "out-1", "1")
    parent, real = os.getpid(), getattr(forked, task)

    def failing(state, *args):
        if os.getpid() != parent:
            if how == "dies":
                os._exit(3)
            raise RuntimeError("this worker failed")
        return real(state, *args)

    monkeypatch.setattr(forked, task, failing)
    assert _replay(data, tmp_path / "out-2", "2") == single
    said = "worker died" if how == "dies" else "RuntimeError"
    assert any(said in record.getMessage() for record in caplog.records)
