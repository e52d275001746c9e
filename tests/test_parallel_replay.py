"""replay with worker processes writes byte for byte what a single process writes."""

from __future__ import annotations

import json
import shutil

import pytest

from fhir_cat2 import pipeline as pipeline_module
from fhir_cat2.cli import main
from fhir_cat2.sources import grouping

from .conftest import ROOT

OUTPUTS = ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson")
VOLATILE = {"duration_seconds", "started_at", "finished_at", "run_id"}
"""Run-report fields that differ between any two runs."""

pytestmark = pytest.mark.skipif(not pipeline_module._can_fork(), reason="worker processes need fork")


@pytest.fixture
def small_slices(monkeypatch):
    """Fork for a handful of patients, in slices of two, so the fixtures exercise the parallel path."""
    monkeypatch.setattr(pipeline_module, "PARALLEL_MIN_PATIENTS", 2)
    monkeypatch.setattr(pipeline_module, "PARALLEL_MIN_SLICE", 2)
    monkeypatch.setattr(pipeline_module, "PARALLEL_SLICES_PER_WORKER", 4)


@pytest.fixture
def data(tmp_path):
    """The fixtures plus input that goes to quarantine (ingest time and evaluation time)."""
    folder = tmp_path / "in"
    shutil.copytree(ROOT / "fixtures", folder)
    (folder / "broken.json").write_text("{not json")
    bundle = json.loads((folder / "patients" / "a1c-poor.json").read_text())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["valueQuantity"].update(unit="mg/dL", code="mg/dL")  # unconvertible: quarantined later
    (folder / "patients" / "a1c-poor.json").write_text(json.dumps(bundle))
    return folder


@pytest.mark.parametrize("extra", [[], ["--program", "mips-claims", "--period", "2025"], ["--report", "both"]])
def test_workers_write_the_same_bytes(tmp_path, data, small_slices, extra):
    runs = {}
    for workers in ("1", "2", "3"):
        out = tmp_path / f"out-{workers}"
        code = main(["replay", str(data), "--out", str(out), "--now", "2026-01-15T00:00:00Z", "--workers", workers, *extra])
        assert code == 1  # completed, with quarantined input
        runs[workers] = {name: (out / name).read_bytes() for name in OUTPUTS}
        report = json.loads((out / "run-report.json").read_text())
        runs[workers]["report"] = {k: v for k, v in report.items() if k not in VOLATILE}
    assert runs["1"]["quarantine.ndjson"].count(b"\n") >= 2
    assert runs["1"] == runs["2"] == runs["3"]


def test_workers_read_a_spilled_grouper(tmp_path, data, small_slices, monkeypatch):
    outs = []
    for workers, budget in (("1", grouping.DEFAULT_BUDGET), ("2", 7)):
        monkeypatch.setattr(pipeline_module, "DEFAULT_BUDGET", budget)
        out = tmp_path / f"out-{workers}"
        assert main(["replay", str(data), "--out", str(out), "--now", "2026-01-15T00:00:00Z", "--workers", workers]) == 1
        outs.append({name: (out / name).read_bytes() for name in OUTPUTS})
    assert outs[0] == outs[1]


def test_workers_must_be_positive(tmp_path, capsys):
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err
