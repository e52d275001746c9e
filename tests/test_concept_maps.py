"""Site ConceptMaps: a local code a map maps (equivalent, equal, wider, subsumes) counts as its target, marked
as mapped; a bad map is a configuration error naming the file and element, before any work.

The fixture a1c-local-code documents its HbA1c (6.8%) only under a site lab code: without the map the patient
is in CMS122's numerator ("no test") and earns no HbA1c code; with fixtures/concept-maps it earns 3044F and
leaves the numerator, and explain and the run report name the map."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main
from fhir_cat2.conceptmaps import ConceptMaps
from fhir_cat2.pipeline import Pipeline, RunOptions
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.sinks.base import NullSink
from fhir_cat2.sources.files import InputItem
from fhir_cat2.sources.records import ObservationRecord, Src
from fhir_cat2.sources.values import plain_resolver

from .conftest import CPT, ICD10, LOINC, ROOT, RXNORM, a1c, condition, encounter, patient, procedure

NS = uuid.UUID("5b0c3b1e-6f1e-4c39-9a55-0c2f3b7a1d10")  # tools/make_fixtures.py
MAPS = ROOT / "fixtures" / "concept-maps"
MAP_URL = "http://example.org/fhir/ConceptMap/local-lab-codes"
LOCAL = "http://example.org/lab-codes"
PATIENT = str(uuid.uuid5(NS, "a1c-local-code/patient"))


def concept_map(*targets: dict[str, Any], source: str = LOCAL, target: str | None = LOINC) -> dict[str, Any]:
    group: dict[str, Any] = {"source": source, "element": [{"code": "HBA1C-LOCAL", "target": list(targets)}]}
    if target:
        group["target"] = target
    return {
        "resourceType": "ConceptMap",
        "url": "http://example.org/cm/test",
        "status": "active",
        "group": [group],
    }


def write_map(folder: Path, resource: Any, name: str = "map.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(resource) if not isinstance(resource, str) else resource)
    return folder


def replay(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    assert (
        main(["replay", str(ROOT / "fixtures" / "patients"), "--out", str(out), "--period", "2025", *extra])
        == 0
    )
    return out


def patient_lines(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if PATIENT in json.dumps(r.get("subject") or r.get("patient") or {})]


def cms122(out: Path) -> dict[str, int]:
    for report in patient_lines(out / "MeasureReport.ndjson"):
        if "DiabetesGlycemicStatus" in report["measure"] or "CMS122" in report["measure"]:
            return {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    raise AssertionError("no CMS122 MeasureReport for the patient")


# ------------------------------------------------------------------------------------------ done-when


def test_without_a_map_the_local_code_is_reported_and_the_run_warns(tmp_path):
    out = replay(tmp_path, "plain")
    assert f"Observation,code,{LOCAL},HBA1C-LOCAL,1" in (out / "unrecognised-codes.csv").read_text()
    report = json.loads((out / "run-report.json").read_text())
    assert any("local code(s)" in w and "unrecognised-codes.csv" in w for w in report["warnings"])
    assert report["concept_maps"] == {"loaded": [], "used": []}
    assert cms122(out)["numerator"] == 1  # "no test": poor control, the inverse measure's numerator
    assert not patient_lines(out / "Claim.ndjson")  # no HbA1c band code earned


def test_with_the_concept_map_the_hba1c_counts_and_the_report_names_the_map(tmp_path):
    out = replay(tmp_path, "mapped", "--concept-maps", str(MAPS))
    assert "HBA1C-LOCAL" not in (out / "unrecognised-codes.csv").read_text()
    assert cms122(out)["numerator"] == 0  # 6.8%: controlled
    claims = patient_lines(out / "Claim.ndjson")
    assert [item["productOrService"]["coding"][0]["code"] for c in claims for item in c["item"]] == ["3044F"]
    report = json.loads((out / "run-report.json").read_text())
    assert report["concept_maps"]["used"] == [
        {
            "resource_type": "Observation",
            "map": MAP_URL,
            "source": f"{LOCAL}|HBA1C-LOCAL",
            "target": f"{LOINC}|4548-4",
            "count": 1,
        }
    ]
    assert report["concept_maps"]["loaded"][0]["url"] == MAP_URL
    assert not any("local code(s)" in w for w in report["warnings"])  # the unrecognised-codes warning


def test_explain_names_the_map_and_tells_the_mapped_code_apart(capsys):
    argv = [
        "explain",
        str(ROOT / "fixtures"),
        "--patient",
        PATIENT,
        "--measure",
        "CMS122",
        "--period",
        "2025",
    ]
    assert main([*argv, "--concept-maps", str(MAPS)]) == 0
    text = capsys.readouterr().out
    assert "3044F" in text
    assert f"{LOCAL}|HBA1C-LOCAL counted as {LOINC}|4548-4 by ConceptMap {MAP_URL}" in text
    assert "Codes counted through a site ConceptMap:" in text
    assert main([*argv, "--concept-maps", str(MAPS), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mapped_codes"][0]["map"] == MAP_URL
    assert data["mapped_codes"][0]["source"] == f"{LOCAL}|HBA1C-LOCAL"
    assert main(argv) == 0  # without the map: nothing counted, nothing named
    assert "ConceptMap" not in capsys.readouterr().out


def test_config_terminology_concept_maps(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"terminology:\n  concept_maps: {MAPS}\n")
    out = replay(tmp_path, "configured", "--config", str(config))
    report = json.loads((out / "run-report.json").read_text())
    assert report["concept_maps"]["used"][0]["map"] == MAP_URL


def test_config_terminology_refuses_unknown_keys(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("terminology:\n  conceptmaps: x\n")
    assert (
        main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--config", str(config)]) == 2
    )
    assert "terminology.conceptmaps" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the record


def ingest(maps: ConceptMaps, *resources: dict[str, Any]) -> Pipeline:
    ruleset = load_rules(concept_maps=maps)
    pipeline = Pipeline(ruleset, RunOptions(period_year=2025), NullSink())
    pipeline.ingest(
        InputItem(r, Src("test.json", f"entry[{i}]"), plain_resolver, r["id"])
        for i, r in enumerate(resources)
    )
    return pipeline


def local_a1c(oid: str = "o1", system: str = LOCAL, code: str = "HBA1C-LOCAL") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-04T09:00:00Z",
        "valueQuantity": {"value": 6.8, "unit": "%"},
    }


def records(pipeline: Pipeline) -> list[Any]:
    return [r for _, rs in pipeline._grouper.patients() for r in rs]


def loaded(tmp_path: Path, resource: Any) -> ConceptMaps:
    maps = ConceptMaps()
    maps.load_dir(write_map(tmp_path / "maps", resource))
    return maps


def test_the_screen_keeps_an_observation_known_only_through_a_map_and_marks_the_code(tmp_path):
    assert not [
        r for r in records(ingest(ConceptMaps(), patient(), local_a1c())) if r.resource_type != "Patient"
    ]
    maps = loaded(tmp_path, concept_map({"code": "4548-4", "equivalence": "equivalent"}))
    (obs,) = [r for r in records(ingest(maps, patient(), local_a1c())) if isinstance(r, ObservationRecord)]
    assert obs.codes == {(LOCAL, "HBA1C-LOCAL"), (LOINC, "4548-4")}
    assert [(m.source, m.target, m.map) for m in obs.mapped] == [
        ((LOCAL, "HBA1C-LOCAL"), (LOINC, "4548-4"), "http://example.org/cm/test")
    ]


@pytest.mark.parametrize(
    ("equivalence", "applied"),
    [
        ("equivalent", True),
        ("equal", True),
        ("wider", True),
        ("subsumes", True),
        ("narrower", False),
        ("specializes", False),
        ("inexact", False),
        ("relatedto", False),
        ("unmatched", False),
        ("disjoint", False),
    ],
)
def test_only_sound_equivalences_are_applied(tmp_path, equivalence, applied):
    maps = loaded(tmp_path, concept_map({"code": "4548-4", "equivalence": equivalence}))
    codes, mapped = maps.apply(frozenset({(LOCAL, "HBA1C-LOCAL")}))
    assert ((LOINC, "4548-4") in codes) is applied
    assert bool(mapped) is applied
    assert (LOCAL, "HBA1C-LOCAL") in maps.listed  # reviewed either way: not reported as unrecognised


def test_a_documented_target_is_not_marked_as_mapped(tmp_path):
    maps = loaded(tmp_path, concept_map({"code": "4548-4", "equivalence": "equivalent"}))
    codes = frozenset({(LOCAL, "HBA1C-LOCAL"), (LOINC, "4548-4")})
    assert maps.apply(codes) == (codes, ())


def test_source_systems_are_normalised(tmp_path):
    maps = loaded(
        tmp_path, concept_map({"code": "X", "equivalence": "equal"}, source="urn:oid:2.16.840.1.113883.6.96")
    )
    assert maps.apply(frozenset({("http://snomed.info/sct", "HBA1C-LOCAL")}))[1]


# ------------------------------------------------------------------------------------------ bad maps


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"resourceType": "ValueSet"}, "resourceType is 'ValueSet', not ConceptMap"),
        ({"resourceType": "ConceptMap", "url": "u"}, "ConceptMap.group: a list of groups is required"),
        (
            concept_map({"code": "4548-4", "equivalence": "same"}),
            "ConceptMap.group[0].element[0].target[0].equivalence: 'same' is not an R4 equivalence",
        ),
        (
            concept_map({"equivalence": "equivalent"}),
            "ConceptMap.group[0].element[0].target[0].code: a target code is required",
        ),
        (
            concept_map({"code": "4548-4", "equivalence": "wider"}, target=None),
            "ConceptMap.group[0].target: the target code system is required",
        ),
        (
            concept_map({"code": "4548-4", "equivalence": "equal"}, source=""),
            "group[0].source: the source code",
        ),
        (
            {"resourceType": "ConceptMap", "group": [{"source": LOCAL, "element": [{"target": []}]}]},
            "ConceptMap.group[0].element[0].code: the source code is required",
        ),
    ],
)
def test_a_bad_map_is_a_configuration_error_naming_file_and_element(tmp_path, capsys, content, message):
    folder = write_map(tmp_path / "maps", content, "site-map.json")
    out = tmp_path / "o"
    code = main(["replay", str(ROOT / "fixtures"), "--out", str(out), "--concept-maps", str(folder)])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and str(folder / "site-map.json") in err
    assert not out.exists()  # refused before any work


def test_concept_maps_must_be_a_folder_with_maps(tmp_path, capsys):
    argv = ["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--concept-maps"]
    assert main([*argv, str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*argv, str(tmp_path / "empty")]) == 2
    assert "no ConceptMap" in capsys.readouterr().err


def test_a_bundle_of_maps_loads(tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": concept_map({"code": "4548-4", "equivalence": "equivalent"})}],
    }
    assert loaded(tmp_path, bundle).by_source


def two_groups(*groups: tuple[str, str, str, str]) -> dict[str, Any]:
    """A ConceptMap of (source system, code, target system, target code) mappings, one group each."""
    return {
        "resourceType": "ConceptMap",
        "name": "SiteCodes",
        "status": "active",
        "group": [
            {
                "source": s,
                "target": t,
                "element": [{"code": c, "target": [{"code": tc, "equivalence": "equivalent"}]}],
            }
            for s, c, t, tc in groups
        ],
    }


SITE = "http://example.org/site-codes"


def test_visit_types_diagnoses_procedures_and_medications_are_mapped_too(tmp_path):
    maps = loaded(
        tmp_path,
        two_groups(
            (SITE, "VISIT-OFFICE", CPT, "99213"),
            (SITE, "DX-T2DM", ICD10, "E11.9"),
            (SITE, "PROC-COLO", CPT, "45378"),
            (SITE, "MED-STATIN", RXNORM, "1000001"),
        ),
    )
    medication = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": SITE, "code": "MED-STATIN"}]},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2025-03-04",
    }
    pipeline = ingest(
        maps,
        patient(),
        encounter("e1", cpt="VISIT-OFFICE", system=SITE),
        condition("c1", "DX-T2DM", system=SITE),
        procedure("pr1", "PROC-COLO", system=SITE),
        medication,
    )
    by_type = {r.resource_type: r for r in records(pipeline)}
    assert (CPT, "99213") in by_type["Encounter"].type_codes
    assert (ICD10, "E11.9") in by_type["Condition"].codes
    assert (CPT, "45378") in by_type["Procedure"].codes
    assert (RXNORM, "1000001") in by_type["MedicationRequest"].codes
    for record in by_type.values():
        if record.resource_type != "Patient":
            assert [m.map for m in record.mapped] == ["SiteCodes"]  # named by the map's name: it has no url
    assert not any(key[0] == "Procedure" for key in pipeline.stats.unrecognised)  # kept, not counted
    assert sorted(key[0] for key in pipeline.stats.mapped) == [
        "Condition",
        "Encounter",
        "MedicationRequest",
        "Procedure",
    ]


def test_a_mapped_visit_type_and_diagnosis_put_the_patient_in_cms122(tmp_path):
    maps = write_map(
        tmp_path / "maps", two_groups((SITE, "VISIT-OFFICE", CPT, "99213"), (SITE, "DX-T2DM", ICD10, "E11.9"))
    )
    source = tmp_path / "in.json"
    resources = [
        patient("p1", birth="1970-02-02"),
        encounter("e1", cpt="VISIT-OFFICE", system=SITE),
        condition("c1", "DX-T2DM", system=SITE),
    ]
    source.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        )
    )
    argv = ["replay", str(source), "--period", "2025", "--measure", "CMS122"]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "run-report.json").read_text())
    assert plain["measure_populations"] == {}
    assert {r["code"] for r in plain["unrecognised_codes"]["by_element"]["Encounter.type"]["top"]} == {
        "VISIT-OFFICE"
    }
    assert main([*argv, "--out", str(tmp_path / "mapped"), "--concept-maps", str(maps)]) == 0
    mapped = json.loads((tmp_path / "mapped" / "run-report.json").read_text())
    assert mapped["measure_populations"]["CMS122"]["initial-population"] == 1
    assert mapped["unrecognised_codes"]["codes"] == 0


def test_a_mapped_diagnosis_counts_but_the_claim_bills_what_was_documented(tmp_path):
    """The ConceptMap's target (E11.9) puts the patient in the measures; the Claim's diagnosis stays the code
    the clinician documented (before: the Claim listed only E11.9, as if it had been charted)."""
    maps = write_map(tmp_path / "maps", two_groups((SITE, "DX-T2DM", ICD10, "E11.9")))
    resources = [
        patient("p1", birth="1970-02-02"),
        encounter("e1", diagnoses=["c1"]),
        condition("c1", "DX-T2DM", system=SITE),
        a1c("o1", 6.5, "2025-03-04T09:10:00Z", eid="e1"),
    ]
    source = tmp_path / "in.json"
    source.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        )
    )
    out = tmp_path / "out"
    assert (
        main(["replay", str(source), "--period", "2025", "--out", str(out), "--concept-maps", str(maps)]) == 0
    )
    report = json.loads((out / "run-report.json").read_text())
    assert report["measure_populations"]["CMS122"]["initial-population"] == 1  # the map made it count
    [claim] = [json.loads(line) for line in (out / "Claim.ndjson").read_text().splitlines()]
    codings = [c for d in claim["diagnosis"] for c in d["diagnosisCodeableConcept"]["coding"]]
    assert codings == [{"system": SITE, "code": "DX-T2DM"}]


def test_a_bundle_whose_entry_is_not_a_list_is_a_configuration_error(tmp_path, capsys):
    folder = write_map(tmp_path / "maps", {"resourceType": "Bundle", "entry": 5}, "bundle.json")
    argv = ["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--concept-maps", str(folder)]
    assert main(argv) == 2  # before: a TypeError, exit 70
    assert "Bundle.entry is not a list" in capsys.readouterr().err
