"""Reading input: single resources, Bundles of every type, NDJSON, .gz, and bad files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fhir_cat2.errors import ConfigError
from fhir_cat2.sources.files import InputItem, Rejected, iter_input_files, read_file

from .conftest import bp_panel, encounter, patient


def _items(path: Path) -> list[InputItem | Rejected]:
    return list(read_file(path))


def test_single_resource_file(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(patient("x")))
    [item] = _items(f)
    assert isinstance(item, InputItem) and item.resource_id == "x" and item.src.position == ""


@pytest.mark.parametrize("bundle_type", ["transaction", "batch", "collection", "searchset"])
def test_bundle_entries_and_urn_uuid_references_resolve(tmp_path, bundle_type):
    pid = "11111111-1111-1111-1111-111111111111"
    pat = patient()
    del pat["id"]  # transaction bundles often carry ids only in fullUrl
    enc = encounter("e1")
    enc["subject"] = {"reference": f"urn:uuid:{pid}"}
    bundle = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {"fullUrl": f"urn:uuid:{pid}", "resource": pat},
            {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": enc},
        ],
    }
    f = tmp_path / "b.json"
    f.write_text(json.dumps(bundle))
    items = _items(f)
    assert [i.resource_id for i in items if isinstance(i, InputItem)] == [pid, "e1"]
    assert items[1].resolve(f"urn:uuid:{pid}") == f"Patient/{pid}"
    assert items[1].src.position == "entry[1]"


def test_absolute_references_and_history_suffix_resolve(tmp_path):
    f = tmp_path / "e.json"
    f.write_text(json.dumps(encounter()))
    [item] = _items(f)
    assert item.resolve("https://ehr.example.org/fhir/Patient/abc") == "Patient/abc"
    assert item.resolve("Patient/abc/_history/3") == "Patient/abc"


def test_ndjson_and_gz(tmp_path):
    lines = [json.dumps(patient("a")), "", json.dumps(patient("b"))]
    (tmp_path / "Patient.ndjson").write_text("\n".join(lines) + "\n")
    with gzip.open(tmp_path / "Observation.ndjson.gz", "wt") as fh:
        fh.write(json.dumps(bp_panel("o", 120, 80)) + "\n")
    with gzip.open(tmp_path / "bundle.json.gz", "wt") as fh:
        fh.write(
            json.dumps(
                {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient("c")}]}
            )
        )
    files = list(iter_input_files([str(tmp_path)]))
    assert [f.name for f in files] == ["Observation.ndjson.gz", "Patient.ndjson", "bundle.json.gz"]
    items = [i for f in files for i in _items(f)]
    assert [i.resource_id for i in items] == ["o", "a", "b", "c"]
    assert items[2].src.position == "line 3"


def test_malformed_json_file_is_rejected_with_its_name(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"resourceType": "Patient", "id": ')
    [item] = _items(f)
    assert isinstance(item, Rejected)
    assert item.src.file.endswith("broken.json") and "not valid JSON" in item.reason


def test_bad_ndjson_line_is_rejected_and_the_rest_is_kept(tmp_path):
    f = tmp_path / "Patient.ndjson"
    f.write_text(json.dumps(patient("a")) + "\n{oops\n" + json.dumps(patient("b")) + "\n")
    items = _items(f)
    assert [type(i).__name__ for i in items] == ["InputItem", "Rejected", "InputItem"]
    assert items[1].src.position == "line 2"


def test_non_fhir_json_is_rejected(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2]")
    (tmp_path / "b.json").write_text('{"name": "package"}')
    reasons = [i.reason for f in iter_input_files([str(tmp_path)]) for i in _items(f)]
    assert "expected a FHIR resource" in reasons[0]
    assert "no resourceType" in reasons[1]


def test_nested_bundles_are_walked(tmp_path):
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient("deep")}]}
    outer = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": inner}]}
    f = tmp_path / "n.json"
    f.write_text(json.dumps(outer))
    [item] = _items(f)
    assert item.resource_id == "deep" and item.src.position == "entry[0].entry[0]"


def test_resource_without_id_gets_a_stable_content_id(tmp_path):
    resource = patient()
    del resource["id"]
    f = tmp_path / "p.json"
    f.write_text(json.dumps(resource))
    first = _items(f)[0].resource_id
    assert first.startswith("sha256-") and first == _items(f)[0].resource_id


def test_missing_input_path_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="input path not found"):
        list(iter_input_files([str(tmp_path / "nope")]))


def test_non_json_files_in_folders_are_skipped(tmp_path):
    (tmp_path / "README.md").write_text("hello")
    (tmp_path / "p.json").write_text(json.dumps(patient()))
    assert [f.name for f in iter_input_files([str(tmp_path)])] == ["p.json"]


def test_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path):
    data = gzip.compress("".join(json.dumps(patient(f"p{n}")) + "\n" for n in range(200)).encode())
    path = tmp_path / "Patient.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    items = _items(path)
    assert isinstance(items[-1], Rejected) and "cannot read file" in items[-1].reason
    kept = [i for i in items if isinstance(i, InputItem)]
    assert kept and kept[0].resource_id == "p0"


def test_a_bad_lines_reason_does_not_depend_on_its_line_end(tmp_path):
    for end in (b"\n", b"\r\n", b""):
        # the reason of a bad line is the same whichever reader read it (Spark hands lines over without
        # their end)
        (tmp_path / "f.ndjson").write_bytes(b'{"resourceType": "Obs' + end)
        [rejected] = read_file(tmp_path / "f.ndjson")
        assert isinstance(rejected, Rejected)
        assert rejected.reason == "not valid JSON: unexpected end of data: line 1 column 22 (char 21)"
