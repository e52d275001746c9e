"""Spark's input rows give the items replay's reader gives for the same files: same resources, same
``Src`` (file name as replay names it, exact line numbers even when Spark splits a file), same rejections."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import pytest

from fhir_cat2.sources.files import InputItem, Rejected, is_input_file, iter_input_files, read_file
from fhir_cat2.spark_input import (
    DOCUMENT_GLOB,
    NDJSON_GLOB,
    _line_offsets,
    input_rows,
    items_of_rows,
    name_files,
    replay_order_key,
)

from ..conftest import encounter, patient, shared_path
from .conftest import SPARK_MARKS

PID = "11111111-1111-1111-1111-111111111111"


def _line(resource) -> bytes:
    return json.dumps(resource).encode()


def _edge_tree(root: Path) -> None:
    """Every input shape replay reads, and names it skips."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "b-sub").mkdir()
    (root / "a.ndjson").write_bytes(
        _line(patient("p1")) + b"\n\n" + _line(encounter("e1")) + b"\n" + b'{"resourceType": "Obs' + b"\n"
    )
    (root / "crlf.jsonl").write_bytes(_line(patient("p2")) + b"\r\n\r\n" + _line(encounter("e2")) + b"\r\n")
    (root / "no-end.ndjson").write_bytes(_line(patient("p3")) + b"\n[1, 2]\n" + b'{"id": "x"}')
    (root / "latin1.ndjson").write_bytes(
        b'{"resourceType": "Patient", "id": "\xe9"}\n' + _line(patient("p9"))
    )
    (root / "z.ndjson.gz").write_bytes(gzip.compress(_line(patient("p4")) + b"\n\n" + b"{bad\n"))
    pat = patient()
    del pat["id"]
    enc = encounter("e5")
    enc["subject"] = {"reference": f"urn:uuid:{PID}"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{PID}", "resource": pat},
            {"request": {"method": "DELETE"}},
            {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": enc},
            {"resource": {"id": "no-type"}},
        ],
    }
    (root / "sub" / "bundle.json").write_text(json.dumps(bundle, indent=2))
    (root / "sub" / "saved as.json").write_bytes(
        _line(patient("p6")) + b"\n" + _line(encounter("e6")) + b"\n"
    )
    (root / "sub" / "broken.json").write_text('{"resourceType": ')
    (root / "sub" / "deeper" / "P7.JSON.GZ").write_bytes(gzip.compress(_line(patient("p7"))))
    (root / "sub" / "deeper" / "list.Json").write_text("[1]")
    (root / "b-sub" / "BIG.NDJSON").write_bytes(_line(patient("p8")) + b"\n")
    (root / "b-sub" / "notes.txt").write_text("not an input")
    (root / "b-sub" / "data.csv").write_text("a,b\n")
    (root / "b-sub" / "x.json.bak").write_text("{}")


def _seen(items) -> list[tuple[str, str]]:
    """What a reader gave: where, and the resource (with its resolved subject) or the reason."""
    found = []
    for item in items:
        if isinstance(item, Rejected):
            found.append((str(item.src), f"rejected ({item.kind.value}): {item.reason}"))
            continue
        assert isinstance(item, InputItem)
        subject = (item.resource.get("subject") or {}).get("reference")
        shown = f"{item.resource['resourceType']}/{item.resource_id}"
        found.append((str(item.src), shown + (f" -> {item.resolve(subject)}" if subject else "")))
    return found


def _replay(inputs: list[str]) -> list[tuple[str, str]]:
    return _seen(item for path in iter_input_files(inputs) for item in read_file(path))


def _spark(spark, inputs: list[str]) -> list[tuple[str, str]]:
    rows = sorted(input_rows(spark, inputs).collect(), key=lambda row: (row.file_index, row.line))
    return _seen(items_of_rows((row.file, row.file_index, row.line, bytes(row.data)) for row in rows))


# ------------------------------------------------------------------------------ without Spark


def test_names_and_order_are_replays_from_spark_uris(tmp_path, monkeypatch):
    _edge_tree(tmp_path / "in")
    (tmp_path / "one.ndjson").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    inputs = ["in", "./one.ndjson"]
    replay_names = [str(p) for p in iter_input_files(inputs)]
    # as Spark spells them: absolute, percent-encoded, `file:/` (its _metadata) or `file:///` (inputFiles)
    uris = [
        ("file:/" if n % 2 else "file:///") + quote(os.path.abspath(name).lstrip("/"))
        for n, name in enumerate(reversed(replay_names))
    ]
    named = name_files(inputs, uris)
    assert [f.name for f in sorted(named.values(), key=lambda f: f.index)] == replay_names
    assert "in/sub/saved as.json" in replay_names and replay_names[-1] == "one.ndjson"


def test_remote_files_keep_their_uri_and_sort_like_a_folder_walk():
    named = name_files(
        ["s3a://bucket/export/"],
        [
            "s3a://bucket/export/sub/b.ndjson",
            "s3a://bucket/export/z.ndjson",
            "s3a://bucket/export/a%20b.ndjson",
        ],
    )
    ordered = [f.name for f in sorted(named.values(), key=lambda f: f.index)]
    assert ordered == [
        "s3a://bucket/export/a b.ndjson",
        "s3a://bucket/export/z.ndjson",
        "s3a://bucket/export/sub/b.ndjson",
    ]


def test_order_key_puts_a_folders_files_before_its_subfolders():
    paths = ["b/x.json", "a.json", "b/c/y.json", "z.json", "b/b.json", "a/q.json"]
    ordered = sorted(paths, key=lambda p: replay_order_key(PurePosixPath(p)))
    assert ordered == ["a.json", "z.json", "a/q.json", "b/b.json", "b/x.json", "b/c/y.json"]


def test_line_offsets_sum_the_lines_of_earlier_blocks():
    counts = [("f", 200, 5), ("f", 0, 7), ("f", 100, 3), ("g", 0, 9)]
    assert _line_offsets(counts) == {("f", 100): 7, ("f", 200): 10}


def test_items_of_rows_is_replays_reader():
    rows = [("f.ndjson", 0, 3, _line(patient("p1"))), ("f.ndjson", 0, 4, b"  "), ("d.json", 1, 0, b"[]")]
    assert _seen(items_of_rows(rows)) == [
        ("f.ndjson line 3", "Patient/p1"),
        ("d.json", "rejected (not-fhir): expected a FHIR resource (a JSON object), found a JSON list"),
    ]


# ------------------------------------------------------------------------------ with Spark


class TestWithSpark:
    pytestmark = SPARK_MARKS

    def test_every_input_shape_reads_as_replay_reads_it(self, spark, tmp_path, monkeypatch):
        _edge_tree(tmp_path / "in")
        monkeypatch.chdir(tmp_path)
        expected = _replay(["in"])
        assert ("in/a.ndjson line 3", "Encounter/e1 -> Patient/p1") in expected  # the blank line 2 counted
        assert ("in/sub/bundle.json entry[2]", f"Encounter/e5 -> Patient/{PID}") in expected
        assert ("in/sub/saved as.json line 2", "Encounter/e6 -> Patient/p1") in expected
        assert any(src == "in/z.ndjson.gz line 3" and "rejected" in seen for src, seen in expected)
        assert _spark(spark, ["in"]) == expected

    def test_given_files_and_folders_in_input_order(self, spark, tmp_path, monkeypatch):
        _edge_tree(tmp_path / "in")
        monkeypatch.chdir(tmp_path)
        inputs = ["in/sub", "in/b-sub/notes.txt", "in/a.ndjson"]
        expected = _replay(inputs)
        assert expected[-1][0].startswith("in/a.ndjson") and any("notes.txt" in src for src, _ in expected)
        assert _spark(spark, inputs) == expected

    def test_folder_glob_reads_exactly_the_names_replay_reads(self, spark, tmp_path):
        names = ["a.json", "b.JSON", "c.ndjson", "d.NdJson", "e.jsonl", "f.JSONL.GZ", "g.json.gz"]
        names += ["h.ndjson.gz", "i.json.bak", "j.txt", "k.gz", "l.njson", "mjson", "n.csv"]
        for name in names:
            (tmp_path / name).write_bytes(b"")
        assert {n for n in names if is_input_file(n)} == {n for n in names if n < "i"}
        found = set()
        for glob in (NDJSON_GLOB, DOCUMENT_GLOB):
            frame = spark.read.text(str(tmp_path), recursiveFileLookup=True, pathGlobFilter=glob)
            found |= {uri.rsplit("/", 1)[-1] for uri in frame.inputFiles()}
        assert found == {n for n in names if is_input_file(n)}

    def test_exact_line_numbers_when_one_file_spans_many_partitions(self, spark, tmp_path):
        lines = []
        for n in range(1, 1201):
            if n % 7 == 0:
                lines.append(b"" if n % 2 else b"   ")
            elif n % 97 == 0:
                lines.append(b'{"resourceType": "Patient", "id": ')
            else:
                lines.append(_line(patient(f"p{n}")))
        big = tmp_path / "big.ndjson"
        big.write_bytes(b"\r\n".join(lines[:600]) + b"\r\n" + b"\n".join(lines[600:]) + b"\n")
        small = tmp_path / "small.ndjson"
        small.write_bytes(b"\n".join(lines[:40]))
        old = spark.conf.get("spark.sql.files.maxPartitionBytes")
        spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")
        try:
            blocks = spark.read.text(str(big)).select("_metadata.file_block_start").distinct().count()
            assert blocks > 10  # the file really is read in many pieces
            got = _spark(spark, [str(tmp_path)])
        finally:
            spark.conf.set("spark.sql.files.maxPartitionBytes", old)
        expected = _replay([str(tmp_path)])
        assert len(expected) > 1000 and (f"{big} line 1200", "Patient/p1200") in expected
        assert got == expected

    def test_the_documented_differences_from_replay(self, spark, tmp_path):
        """docs/spark.md and the spark_input docstring name these; this keeps them true."""
        (tmp_path / "cr.ndjson").write_bytes(_line(patient("c1")) + b"\r" + _line(patient("c2")) + b"\n")
        (tmp_path / "bom.ndjson").write_bytes(b"\xef\xbb\xbf" + _line(patient("b1")) + b"\n")
        (tmp_path / "_hidden.ndjson").write_bytes(_line(patient("h1")) + b"\n")
        (tmp_path / ".hidden.ndjson").write_bytes(_line(patient("h2")) + b"\n")
        replayed = dict(_replay([str(tmp_path)]))
        read = dict(_spark(spark, [str(tmp_path)]))
        cr, bom = f"{tmp_path}/cr.ndjson", f"{tmp_path}/bom.ndjson"
        # a lone CR ends a line for Hadoop only
        assert "unexpected content after document" in replayed[f"{cr} line 1"]
        assert (read[f"{cr} line 1"], read[f"{cr} line 2"]) == ("Patient/c1", "Patient/c2")
        # Hadoop drops a byte-order mark at the start of a file; orjson refuses it
        assert "byte order mark" in replayed[f"{bom} line 1"] and read[f"{bom} line 1"] == "Patient/b1"
        # Spark's listing skips names starting with _ or .
        assert {f"{tmp_path}/_hidden.ndjson line 1", f"{tmp_path}/.hidden.ndjson line 1"} <= replayed.keys()
        assert not any("hidden" in src for src in read)


@pytest.mark.corpus
class TestCorpusWithSpark:
    pytestmark = SPARK_MARKS

    def test_the_shared_corpus_reads_as_replay_reads_it(self, spark):
        # bulk-export NDJSON (plain and gzip), Bundles, single resources, several inputs
        names = ("bulk-10-patients", "generated-carebundle", "us-core-examples")
        inputs = [str(shared_path("corpus", name)) for name in names]
        expected = _replay(inputs)
        assert len(expected) > 5_000
        assert _spark(spark, inputs) == expected
