"""fhir-cat2 measures list, and the README's catalogue table generated from the same data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fhir_cat2.catalogue import as_markdown, catalogue
from fhir_cat2.cli import main
from fhir_cat2.rules.loader import read_table
from tests.conftest import ROOT, shared_path


def test_every_measure_says_what_it_counts_and_its_key_logic() -> None:
    missing = [m.id for m in read_table().measures if not m.what or not m.logic]
    assert missing == [], f"add what: and logic: to these measures' definitions: {missing}"


def test_readme_table_is_generated_from_the_rules_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- catalogue:start -->\n", 1)[1].split("<!-- catalogue:end -->", 1)[0]
    assert table == as_markdown(catalogue(read_table())), "stale: run python tools/readme_catalogue.py"
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "readme_catalogue.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_measures_list_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measures", "list"]) == 0
    out = capsys.readouterr().out
    for measure in read_table().measures:
        assert f"{measure.id}  MIPS {measure.mips}" in out or f"{measure.id}  MIPS " in out
    assert "CMS165  MIPS 236 (claims/EHR/registry)  ControllingHighBloodPressureFHIR 0.1.000  1 group" in out
    assert "CMS138  MIPS 226, 226.01, 226.02" in out and "3 groups" in out
    assert "CMS122  MIPS 001 (claims/EHR/registry)" in out and "inverse" in out
    assert "codes: mips-claims 2021: G2115" in out
    assert "CMS139  MIPS 318 (EHR)" in out
    assert "program hedis (code rules not tied to one eCQM): " in out and "3074F" in out


def test_measures_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measures", "list", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_id = {m["id"]: m for m in data["measures"]}
    assert set(by_id) == {m.id for m in read_table().measures}
    cms165 = by_id["CMS165"]
    assert (cms165["mips"], cms165["version"], cms165["groups"], cms165["basis"]) == (
        "236",
        "0.1.000",
        1,
        "patient",
    )
    assert [c["years"] for c in cms165["claims"]] == ["2021", "2022-2025"]
    assert "G0031" in cms165["claims"][1]["codes"] and "G0031" not in cms165["claims"][0]["codes"]
    assert by_id["CMS22"]["basis"] == "encounter" and by_id["CMS139"]["claims"] == []
    assert by_id["MIPS047"]["name"] is None and by_id["MIPS047"]["methods"] == ["claims", "registry"]


def test_measures_list_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measures", "list", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == as_markdown(catalogue(read_table()))


def test_readme_counts_the_catalogue() -> None:
    measures = read_table().measures
    ecqms = sum(1 for m in measures if m.url)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"- **Measures**: {ecqms} eCQMs of the 2025 MIPS set" in readme


def test_the_catalogue_holds_every_ecqm_of_the_2025_mips_set() -> None:
    """Every measure CMS's 2025 MIPS measures data lists with an eCQM id is in the catalogue, by the same MIPS
    number (CMS249, named by an older plan, is in neither that list nor the published 2025 eCQM content)."""
    data = json.loads(shared_path("reference", "cms-qpp", "2025_measures-data.json").read_text())
    published = {m["eMeasureId"].split("v")[0].upper(): m["measureId"] for m in data if m.get("eMeasureId")}
    ours = {m.id: m.mips for m in read_table().measures if m.id.startswith("CMS")}
    assert len(published) == 47
    assert {cms: ours.get(cms) for cms in published} == published
    assert "CMS249" not in published
