"""Replay of the bundled fixtures is pinned byte for byte, and is deterministic.

To accept a deliberate change of output:

    FHIR_CAT2_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_replay.py
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_cat2.cli import main

from .conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"
OUTPUTS = ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson", "unrecognised-codes.csv")
CASES = {
    "fixtures-hedis": ["--now", "2026-01-15T00:00:00Z"],
    "fixtures-hedis-concept-maps": [
        "--now",
        "2026-01-15T00:00:00Z",
        "--concept-maps",
        "fixtures/concept-maps",
    ],
    "fixtures-mips-claims-2025": [
        "--program",
        "mips-claims",
        "--period",
        "2025",
        "--now",
        "2026-01-15T00:00:00Z",
    ],
}


def _replay(out: Path, extra: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(ROOT)
    return main(["replay", "fixtures", "--out", str(out), *extra])


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_replay_matches_golden(tmp_path, monkeypatch, case):
    out = tmp_path / case
    assert _replay(out, CASES[case], monkeypatch) == 0
    expected_dir = GOLDEN / case
    if os.environ.get("FHIR_CAT2_UPDATE_GOLDEN"):
        expected_dir.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:
            shutil.copyfile(out / name, expected_dir / name)
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (expected_dir / name).read_bytes(), (
            f"{case}/{name} differs from golden"
        )


def test_replay_is_byte_identical_across_runs_and_input_order(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    assert _replay(first, [], monkeypatch) == 0
    # Same data, files listed in another order and through another path spelling.
    monkeypatch.chdir(ROOT)
    paths = sorted((ROOT / "fixtures").rglob("*.json*"), reverse=True) + sorted(
        (ROOT / "fixtures" / "bulk").glob("*")
    )
    assert main(["replay", *[str(p.relative_to(ROOT)) for p in paths], "--out", str(second)]) == 0
    for name in ("Claim.ndjson", "MeasureReport.ndjson"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_every_output_validates_with_fhir_r4b(tmp_path, monkeypatch):
    out = tmp_path / "o"
    assert _replay(out, [], monkeypatch) == 0
    claims = [json.loads(line) for line in (out / "Claim.ndjson").read_text().splitlines()]
    reports = [json.loads(line) for line in (out / "MeasureReport.ndjson").read_text().splitlines()]
    assert claims and reports
    for claim in claims:
        Claim.model_validate(claim)
    for report in reports:
        MeasureReport.model_validate(report)


def test_run_report(tmp_path, monkeypatch):
    out = tmp_path / "o"
    assert _replay(out, [], monkeypatch) == 0
    report = json.loads((out / "run-report.json").read_text())
    assert report["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    assert report["files_read"] == 24 and report["patients"] == 20
    assert report["codes_emitted"] == sum(report["codes"].values()) > 0
    assert report["written"]["Claim"] == len((out / "Claim.ndjson").read_text().splitlines())
    assert report["quarantined"] == 0
    assert report["measure_populations"]["CMS165"]["initial-population"] >= 1
    assert report["defaults_used"]["provider"]["from"] == "built-in"
    assert report["duration_seconds"] >= 0
