"""Input for the Spark executor: the files replay would read, as DataFrame rows replay's reader turns into
the same items (same resources, same ``Src`` file and position, so quarantine output is byte-identical).

DataFrame API only (no RDDs, no ``sparkContext``, no JVM access), so it runs on Spark Connect and on
Databricks shared and serverless clusters. Inputs are local paths or Hadoop URIs (``file://``, ``s3a://``,
``abfss://``, ``gs://``, ``hdfs://``); a folder is read recursively.

- NDJSON (``.ndjson``, ``.jsonl``, and ``.gz`` of those) is read with the text reader, one row per line.
  Spark splits a large plain file into several partitions, so the line number replay gives
  (``files.ndjson_line``: split on ``\\n``, blank lines skipped but counted) is found in two passes,
  without a global sort: pass 1 counts the lines of each (file, block) and the driver sums them into each
  block's first line number; pass 2 (``mapInArrow``) numbers the lines of each block from there.
- ``.json`` files (a resource, a Bundle, NDJSON saved under a .json name), and any file given by name
  that is not NDJSON, are read whole (``wholetext``), one row per file; ``files.read_document_bytes``
  reads them, as replay does, ``urn:uuid`` references resolved within each Bundle.
- Files are named as replay names them: a local input keeps the path as given (``fixtures`` ->
  ``fixtures/sub/a.ndjson``), a remote one its URI (percent-decoding undone); ``file_index`` is replay's
  order (``iter_input_files``: inputs in order, in a folder its files sorted, then its subfolders sorted).

What cannot match replay (documented in docs/spark.md):

- a lone ``\\r`` line end: Hadoop's line reader ends a line there, Python's does not (``\\n`` and ``\\r\\n``
  match: the line terminator is dropped before parsing on both sides);
- a UTF-8 byte-order mark at the start of an NDJSON file: Hadoop's line reader drops it;
- files and folders whose names start with ``_`` or ``.``: Spark's file listing skips them, replay reads them;
- a corrupt .gz or an unreadable file fails the Spark job; replay quarantines it and goes on;
- inputs that overlap (a folder and a file in it): replay reads such a file twice, here it is numbered once;
- a local input given without a scheme is resolved by Spark against its default filesystem: on a cluster
  whose default is HDFS or DBFS it names that filesystem, and such files keep their URI as their name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from .errors import ConfigError
from .sources.files import InputItem, Rejected, is_input_file, ndjson_line, read_document_bytes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "INPUT_SCHEMA",
    "InputFile",
    "InputRow",
    "input_rows",
    "items_of_rows",
    "name_files",
    "replay_order_key",
]

INPUT_SCHEMA = "file string, file_index long, line long, data binary"
"""The rows ``input_rows`` returns: replay's name of the file, its place in replay's order, the 1-based
line number of an NDJSON line (0: the row is a whole file), and the bytes (a line without its end)."""

DOCUMENT = 0
"""``line`` of a row that holds a whole file."""


def _nocase(suffix: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in suffix)


# Hadoop globs: the names is_input_file accepts, split by how they are read (tests pin the match)
NDJSON_GLOB = "*.{" + ",".join(_nocase(s) for s in ("ndjson", "jsonl", "ndjson.gz", "jsonl.gz")) + "}"
DOCUMENT_GLOB = "*.{" + ",".join(_nocase(s) for s in ("json", "json.gz")) + "}"


class InputRow(NamedTuple):
    file: str
    file_index: int
    line: int
    data: bytes


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str
    """As replay names it (``str`` of the path ``iter_input_files`` yields), or the URI of a remote file."""
    index: int
    """Its place in replay's reading order."""


def _is_uri(path: str) -> bool:
    return "://" in path or path.startswith("file:")


def _is_ndjson(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith((".ndjson", ".jsonl"))


def _uri_key(uri: str) -> tuple[str, str, str]:
    """A file's URI as (scheme, authority, decoded path): ``file:/a%20b`` and ``file:///a b`` are one key
    (Spark's ``_metadata.file_path`` and ``inputFiles`` spell a local file differently)."""
    parts = urlsplit(uri)
    return parts.scheme, parts.netloc, unquote(parts.path)


def _uri_name(key: tuple[str, str, str]) -> str:
    scheme, netloc, path = key
    return f"{scheme}://{netloc}{path}" if scheme else path


def replay_order_key(relative: PurePosixPath) -> tuple[tuple[int, str], ...]:
    """The key that sorts the files of one folder as ``iter_input_files`` walks it: by name within a folder,
    a folder's own files before its subfolders, subfolders by name."""
    *folders, name = relative.parts
    return (*((1, folder) for folder in folders), (0, name))


def name_files(inputs: list[str], uris: Iterable[str]) -> dict[tuple[str, str, str], InputFile]:
    """Replay's name and order index of each file Spark found (``uris``, as Spark spells them), keyed by
    ``_uri_key``. A file is placed under the first input that contains it; one under none (a remote input
    Spark qualified differently) comes last, by URI."""
    roots: list[tuple[tuple[str, str, str], str]] = []
    for given in inputs:
        if _is_uri(given):
            key = _uri_key(given)
            roots.append(((key[0], key[1], key[2].rstrip("/") or "/"), given.rstrip("/")))
        else:
            roots.append((("file", "", os.path.abspath(given)), str(Path(given))))
    placed: list[tuple[tuple[Any, ...], tuple[str, str, str], str]] = []
    for key in {_uri_key(uri) for uri in uris}:
        for position, (root, shown) in enumerate(roots):
            if key[:2] != root[:2]:
                continue
            if key[2] == root[2]:
                name = shown if not _is_uri(shown) else _uri_name(key)
                placed.append(((position, ()), key, name))
                break
            if key[2].startswith(root[2].rstrip("/") + "/"):
                relative = PurePosixPath(key[2][len(root[2].rstrip("/")) + 1 :])
                name = str(Path(shown).joinpath(*relative.parts)) if not _is_uri(shown) else _uri_name(key)
                placed.append(((position, replay_order_key(relative)), key, name))
                break
        else:
            placed.append(((len(roots), key), key, _uri_name(key)))
    placed.sort(key=lambda found: found[0])
    return {key: InputFile(name, index) for index, (_, key, name) in enumerate(placed)}


def _line_offsets(counts: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """From (file, block start, lines in the block): the number of lines before each block of a file that
    Spark split (blocks after the first only)."""
    blocks: dict[str, list[tuple[int, int]]] = {}
    for file, start, lines in counts:
        blocks.setdefault(file, []).append((start, lines))
    offsets: dict[tuple[str, int], int] = {}
    for file, found in blocks.items():
        before = 0
        for start, lines in sorted(found):
            if before:
                offsets[(file, start)] = before
            before += lines
    return offsets


def _number_rows(
    files: dict[tuple[str, str, str], InputFile], offsets: dict[tuple[str, int], int]
) -> Any:  # a mapInArrow function: Iterator[pyarrow.RecordBatch] -> Iterator[pyarrow.RecordBatch]
    def number(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        # rows of one (file, block) arrive in order, possibly over several batches of one partition
        seen: dict[tuple[str, int], int] = {}
        named: dict[str, InputFile] = {}
        for batch in batches:
            paths = batch.column(0).to_pylist()
            starts = batch.column(1).to_pylist()
            names: list[str] = []
            indexes: list[int] = []
            lines: list[int] = []
            for path, start in zip(paths, starts, strict=True):
                file = named.get(path)
                if file is None:
                    file = named[path] = files[_uri_key(path)]
                names.append(file.name)
                indexes.append(file.index)
                if start < 0:
                    lines.append(DOCUMENT)
                    continue
                block = (path, start)
                line = seen.get(block)
                if line is None:
                    line = offsets.get(block, 0)
                line += 1
                seen[block] = line
                lines.append(line)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(names, pa.string()),
                    pa.array(indexes, pa.int64()),
                    pa.array(lines, pa.int64()),
                    batch.column(2),
                ],
                names=["file", "file_index", "line", "data"],
            )

    return number


def input_rows(spark: SparkSession, inputs: list[str]) -> DataFrame:
    """The input files as ``INPUT_SCHEMA`` rows: one per NDJSON line, one per other file. Runs one small
    Spark job (lines per block of the NDJSON files) before returning; the rows are read when used."""
    from pyspark.sql import functions as F

    if not inputs:
        raise ConfigError("no input paths given")
    missing = [p for p in inputs if not _is_uri(p) and not os.path.exists(p)]
    if missing:
        raise ConfigError("input path not found: " + ", ".join(missing))
    # a given file is read by its own name's kind (replay reads any file it is given); a folder through globs
    given_file = {p: (os.path.isfile(p) if not _is_uri(p) else is_input_file(p.rstrip("/"))) for p in inputs}
    # relative to this process's folder, not the JVM's (a notebook or a test may have changed it)
    located = {p: p if _is_uri(p) else os.path.abspath(p) for p in inputs}
    reads: list[tuple[DataFrame, bool]] = []
    for ndjson in (True, False):
        files = [located[p] for p in inputs if given_file[p] and _is_ndjson(p) == ndjson]
        folders = [located[p] for p in inputs if not given_file[p]]
        options: dict[str, Any] = {} if ndjson else {"wholetext": True}
        if files:
            reads.append((spark.read.text(files, **options), ndjson))
        if folders:
            glob = NDJSON_GLOB if ndjson else DOCUMENT_GLOB
            reads.append(
                (spark.read.text(folders, recursiveFileLookup=True, pathGlobFilter=glob, **options), ndjson)
            )
    uris = [uri for frame, _ in reads for uri in frame.inputFiles()]
    files_named = name_files(inputs, uris)
    path = F.col("_metadata.file_path").alias("path")
    data = F.col("value").cast("binary").alias("data")
    start = F.col("_metadata.file_block_start").alias("start")
    lines = [frame.select(path, start, data) for frame, ndjson in reads if ndjson]
    documents = [
        frame.select(path, F.lit(-1).cast("long").alias("start"), data)
        for frame, ndjson in reads
        if not ndjson
    ]
    offsets: dict[tuple[str, int], int] = {}
    if lines:
        counted = _union(lines).groupBy("path", "start").count().collect()  # pass 1: one row per block
        offsets = _line_offsets((row["path"], row["start"], row["count"]) for row in counted)
    rows = _union(lines + documents)
    return rows.mapInArrow(_number_rows(files_named, offsets), INPUT_SCHEMA)


def _union(frames: list[DataFrame]) -> DataFrame:
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def items_of_rows(rows: Iterable[InputRow | tuple[str, int, int, bytes]]) -> Iterator[InputItem | Rejected]:
    """Replay's items of ``input_rows`` rows, in row order: the same resources, ``Src`` and rejections
    ``read_file`` gives for the same file."""
    for file, _index, line, data in rows:
        if line == DOCUMENT:
            yield from read_document_bytes(file, data)
        else:
            yield from ndjson_line(file, line, data)
