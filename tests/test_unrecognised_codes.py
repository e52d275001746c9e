"""unrecognised-codes.csv and the run report's unrecognised_codes: the codes in the data that no value set,
rule or map knows, per resource type and element, with counts (codes and counts only), ranked; and
``fhir-cat2 codes suggest`` drafting a valid R4 ConceptMap from it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.conceptmap import ConceptMap

from fhir_cat2.cli import main

from .conftest import LOINC, SNOMED, condition, encounter, patient

LOCAL = "http://example.org/lab-codes"


def observation(
    oid: str, code: str, system: str, *, pid: str = "p1", display: str | None = None
) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [coding], "text": "free text of the lab"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2025-03-04T09:00:00Z",
        "valueQuantity": {"value": 6.8, "unit": "%"},
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def run(
    tmp_path: Path, resources: list[dict[str, Any]], *extra: str
) -> tuple[list[list[str]], dict[str, Any]]:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(bundle(*resources)))
    out = tmp_path / "out"
    assert main(["replay", str(source), "--out", str(out), "--period", "2025", *extra]) in (0, 1)
    rows = list(csv.reader((out / "unrecognised-codes.csv").read_text().splitlines()))
    return rows, json.loads((out / "run-report.json").read_text())


def data() -> list[dict[str, Any]]:
    return [
        patient("p1"),
        patient("p2"),
        encounter("e1", cpt="99213"),  # an office visit: known
        encounter("e2", cpt="410620009", system=SNOMED, pid="p2"),  # a visit type no value set holds
        condition("c1", "E11.9"),  # diabetes: known
        condition("c2", "K05.10", pid="p2"),  # gingivitis: no measure reads it
        observation("o1", "HBA1C-LOCAL", LOCAL, display="Hemoglobin A1c of Jane Doe"),
        observation("o2", "HBA1C-LOCAL", LOCAL, pid="p2"),
        observation("o3", "9279-1", LOINC),  # respiratory rate: standard, no rule reads it
        observation("o4", "4548-4", LOINC),  # HbA1c: known
    ]


def test_the_report_lists_unknown_codes_per_element_ranked_and_without_patient_data(tmp_path):
    rows, report = run(tmp_path, data())
    assert rows == [
        ["resource_type", "element", "system", "code", "count"],
        ["Observation", "code", LOCAL, "HBA1C-LOCAL", "2"],
        ["Condition", "code", "http://hl7.org/fhir/sid/icd-10-cm", "K05.10", "1"],
        ["Encounter", "type", SNOMED, "410620009", "1"],
        ["Observation", "code", LOINC, "9279-1", "1"],
    ]
    text = (tmp_path / "out" / "unrecognised-codes.csv").read_text()
    for secret in ("Jane Doe", "free text", "p1", "p2", "o1", "e2", "6.8"):
        assert secret not in text
    section = report["unrecognised_codes"]
    assert section["codes"] == 4 and section["resources"] == 5
    assert section["by_element"]["Observation.code"] == {
        "codes": 2,
        "resources": 3,
        "top": [
            {"system": LOCAL, "code": "HBA1C-LOCAL", "count": 2},
            {"system": LOINC, "code": "9279-1", "count": 1},
        ],
    }
    assert "Jane Doe" not in json.dumps(report)
    warnings = report["warnings"]
    assert any(w.startswith("1 local code(s)") and "Observation.code 2" in w for w in warnings)
    assert any(w.startswith("1 encounter type code(s)") for w in warnings)


def test_systems_are_merged_under_their_canonical_uri(tmp_path):
    rows, _ = run(
        tmp_path,
        [
            patient("p1"),
            observation("o1", "9279-1", LOINC),
            observation("o2", "9279-1", "urn:oid:2.16.840.1.113883.6.1"),
        ],
    )
    assert rows[1:] == [["Observation", "code", LOINC, "9279-1", "2"]]


def test_codes_suggest_drafts_a_valid_conceptmap_that_applies_nothing_until_filled(tmp_path, capsys):
    rows, _ = run(tmp_path, data())
    draft = tmp_path / "draft.json"
    assert main(["codes", "suggest", str(tmp_path / "out"), "--out", str(draft)]) == 0
    concept_map = json.loads(draft.read_text())
    ConceptMap.model_validate(concept_map)  # valid R4(B)
    sources = {(g["source"], e["code"]) for g in concept_map["group"] for e in g["element"]}
    assert sources == {(LOCAL, "HBA1C-LOCAL"), (SNOMED, "410620009")}  # local codes and visit types
    (lab,) = [g for g in concept_map["group"] if g["source"] == LOCAL]
    assert lab["target"] == LOINC
    target = lab["element"][0]["target"][0]
    assert target["equivalence"] == "unmatched" and "Observation.code (2 times)" in target["comment"]
    assert "1 time)" in json.dumps(concept_map)
    # everything, from the CSV itself
    everything = tmp_path / "all.json"
    assert (
        main(
            [
                "codes",
                "suggest",
                str(tmp_path / "out" / "unrecognised-codes.csv"),
                "--out",
                str(everything),
                "--all",
            ]
        )
        == 0
    )
    assert sum(len(g["element"]) for g in json.loads(everything.read_text())["group"]) == 4
    # loaded untouched, it applies nothing and the codes stay reported
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "draft.json").write_text(json.dumps(concept_map))
    rows_draft, _ = run(tmp_path, data(), "--concept-maps", str(maps))
    assert rows_draft == rows
    # filled in, the local code counts and leaves the report
    target.update(code="4548-4", equivalence="equivalent")
    (maps / "draft.json").write_text(json.dumps(concept_map))
    rows_filled, report = run(tmp_path, data(), "--concept-maps", str(maps))
    assert ["Observation", "code", LOCAL, "HBA1C-LOCAL", "2"] not in rows_filled
    assert report["concept_maps"]["used"][0]["count"] == 2
    # marked reviewed (unmatched, no draft comment): no longer reported, nothing applied
    target.clear()
    target.update(equivalence="unmatched")
    (maps / "draft.json").write_text(json.dumps(concept_map))
    rows_reviewed, report = run(tmp_path, data(), "--concept-maps", str(maps))
    assert ["Observation", "code", LOCAL, "HBA1C-LOCAL", "2"] not in rows_reviewed
    assert report["concept_maps"]["used"] == []


def test_codes_suggest_refuses_what_is_not_the_report(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["codes", "suggest", str(tmp_path / "x.csv"), "--out", str(tmp_path / "d.json")]) == 2
    assert "not an unrecognised-codes.csv" in capsys.readouterr().err
    assert main(["codes", "suggest", str(tmp_path / "none"), "--out", str(tmp_path / "d.json")]) == 2


def test_dental_cdt_codes_are_standard_not_local(tmp_path):
    """CDT (ADA dental codes, read by CMS74/CMS75) is a standard code system: a dental procedure no rule
    reads is listed, under its canonical URI even when sent by OID, but is not a local code to map."""
    cdt = "http://www.ada.org/cdt"
    dental = {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.13", "code": "D1110"}]},
        "subject": {"reference": "Patient/p1"},
        "performedDateTime": "2025-03-04T09:00:00Z",
    }
    rows, report = run(tmp_path, [patient("p1"), dental])
    assert rows[1:] == [["Procedure", "code", cdt, "D1110", "1"]]
    assert not any("local code(s) (of code systems no rule uses)" in w for w in report["warnings"])
