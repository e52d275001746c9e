"""Read FHIR JSON from files and folders: single resources, Bundles of any type, NDJSON, and .gz of each.

Yields one ``InputItem`` per resource (with where it came from and how to resolve its references) or a
``Rejected`` for anything that cannot be read as a resource. Files are read one at a time, in sorted order.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError, QuarantineKind
from .records import Src
from .values import Resolver, content_id, plain_resolver

JSON_SUFFIXES = (".json", ".ndjson", ".jsonl")
MAX_BUNDLE_DEPTH = 4


@dataclass(slots=True)
class InputItem:
    resource: dict[str, Any]
    src: Src
    resolve: Resolver
    resource_id: str


class _BundleEntry(InputItem):
    """A Bundle entry, whose ``src`` is made only when asked for: most entries are dropped unread (vitals and
    labs no rule reads), and a position string and a frozen Src for each were a tenth of reading a file."""

    __slots__ = ("_file", "_index", "_prefix")

    def __init__(
        self, resource: dict[str, Any], file: str, prefix: str, index: int, resolve: Resolver, id_: str
    ) -> None:
        self.resource = resource
        self._file = file
        self._prefix = prefix
        self._index = index
        self.resolve = resolve
        self.resource_id = id_

    @property
    def src(self) -> Src:  # type: ignore[override]
        return Src(self._file, f"{self._prefix}entry[{self._index}]")


@dataclass(slots=True)
class Rejected:
    """An input that could not be used at all; it goes to quarantine."""

    kind: QuarantineKind
    src: Src
    reason: str
    ref: str | None = None
    unreadable: bool = False
    """The file could not be read at all, or not to its end (permissions, an I/O error): named in the log and
    counted (``files_unreadable``), not only quarantined."""


def iter_input_files(paths: list[str]) -> Iterator[Path]:
    """Every JSON/NDJSON file (or .gz of one) under ``paths``, in a stable order.

    Refused before any file is read (a configuration error naming them): a path that does not exist, a
    folder that cannot be listed, and FIFOs, sockets and devices, given or found in a folder (reading a FIFO
    waits for a writer forever; a device is no export)."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise ConfigError("input path not found: " + ", ".join(missing))
    found: list[Path] = []
    special: list[str] = []
    for raw in paths:
        path = Path(raw)
        kind = _special_kind(path)
        if kind is not None:
            special.append(f"{path} ({kind})")
            continue
        if path.is_file():
            found.append(path)
            continue
        for root, dirs, files in os.walk(path, onerror=_unlistable):
            dirs.sort()
            for name in sorted(files):
                file = Path(root) / name
                kind = _special_kind(file)
                if kind is not None:
                    special.append(f"{file} ({kind})")
                elif is_input_file(name):
                    found.append(file)
    if special:
        raise ConfigError(
            "not regular files, refused (fhir-cat2 reads regular files only; move them out of the input): "
            + ", ".join(special)
        )
    yield from found


def _special_kind(path: Path) -> str | None:
    """'FIFO', 'socket' or 'device' for such a file (a symbolic link is followed), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # a dangling link or an unreadable entry: reading it says what is wrong, in its place
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def _unlistable(exc: OSError) -> None:
    raise ConfigError(f"cannot list the input folder {exc.filename}: {exc.strerror or type(exc).__name__}")


def unreadable(src: Src, exc: OSError) -> Rejected:
    """A file the operating system would not let us read: what to do about it, no data, no message text
    (it repeats the path, and the path is in ``src``)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        advice = "make it readable by the user fhir-cat2 runs as, then run again"
    elif exc.errno == errno.EIO:
        advice = "the disk or network filesystem failed to read it; check it, then run again"
    else:
        advice = "check the file, then run again"
    cause = exc.strerror or type(exc).__name__
    return Rejected(
        QuarantineKind.UNREADABLE_FILE, src, f"input file unreadable ({cause}): {advice}", unreadable=True
    )


def is_input_file(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    return lower.endswith(JSON_SUFFIXES)


def _read_bytes(path: Path) -> bytes:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def _is_ndjson_name(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".ndjson", ".jsonl"))


def read_file(path: Path) -> Iterator[InputItem | Rejected]:
    """Resources of one file. Never raises for bad content: it yields ``Rejected`` instead."""
    name = str(path)
    if _is_ndjson_name(path):
        yield from _stream_ndjson(path, name)
        return
    try:
        data = _read_bytes(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        yield Rejected(QuarantineKind.UNREADABLE_CONTENT, Src(name, ""), f"cannot read file: {exc}")
        return
    except OSError as exc:
        yield unreadable(Src(name, ""), exc)
        return
    yield from read_document_bytes(name, data)


def read_document_bytes(name: str, data: bytes) -> Iterator[InputItem | Rejected]:
    """Resources of one whole (decompressed) JSON file named ``name``: a resource, a Bundle (its entries,
    ``urn:uuid`` references resolved within it) or NDJSON saved under a .json name. Shared by ``read_file``
    and the Spark reader, so both read a file the same way."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if data.count(b"\n") > 1 and data.lstrip().startswith(b"{"):
            yield from _read_ndjson(name, data)  # NDJSON saved under a .json name
            return
        yield Rejected(QuarantineKind.INVALID_JSON, Src(name, ""), f"not valid JSON: {exc}")
        return
    yield from _read_document(document, Src(name, ""), plain_resolver, depth=0)


def _stream_ndjson(path: Path, name: str) -> Iterator[InputItem | Rejected]:
    """NDJSON line by line from the (gzip) file handle: memory stays one line, whatever the file size."""
    number = 0
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                yield from ndjson_line(name, number, line)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        where = f"after line {number}" if number else ""
        yield Rejected(QuarantineKind.UNREADABLE_CONTENT, Src(name, where), f"cannot read file: {exc}")
    except OSError as exc:
        yield unreadable(Src(name, f"after line {number}" if number else ""), exc)


def _read_ndjson(name: str, data: bytes) -> Iterator[InputItem | Rejected]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        yield from ndjson_line(name, number, line)


def ndjson_line(name: str, number: int, line: bytes) -> Iterator[InputItem | Rejected]:
    """Resources of line ``number`` (1-based, blank lines counted) of the NDJSON file ``name``: none for a
    blank line. Shared by every reader of NDJSON (whole files, parts, bulk downloads, Spark)."""
    if not line.strip():
        return
    # without its line end (``\n`` or ``\r\n``), as Spark's line reader hands it over: a bad line's
    # JSON error position is then the same whichever reader read it
    line = line.removesuffix(b"\n").removesuffix(b"\r")
    src = Src(name, f"line {number}")
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        yield Rejected(QuarantineKind.INVALID_JSON, src, f"not valid JSON: {exc}")
        return
    yield from _read_document(document, src, plain_resolver, depth=0)


def _read_document(document: Any, src: Src, resolve: Resolver, depth: int) -> Iterator[InputItem | Rejected]:
    if not isinstance(document, dict):
        yield Rejected(
            QuarantineKind.NOT_FHIR,
            src,
            f"expected a FHIR resource (a JSON object), found a JSON {type(document).__name__}",
        )
        return
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        yield Rejected(QuarantineKind.NOT_FHIR, src, "JSON object has no resourceType: not a FHIR resource")
        return
    if resource_type == "Bundle":
        yield from _read_bundle(document, src, depth)
        return
    id_ = document.get("id")
    if not isinstance(id_, str) or not id_:
        id_ = content_id(document)
    yield InputItem(document, src, resolve, id_)


def _entry_id(resource: dict[str, Any], full_url: str | None) -> str:
    id_ = resource.get("id")
    if isinstance(id_, str) and id_:
        return id_
    if full_url:
        if full_url.startswith("urn:uuid:"):
            return full_url[len("urn:uuid:") :]
        tail = full_url.rstrip("/").rsplit("/", 1)[-1]
        if tail and not full_url.startswith("urn:"):
            return tail
    return content_id(resource)


def _read_bundle(bundle: dict[str, Any], src: Src, depth: int) -> Iterator[InputItem | Rejected]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        yield Rejected(QuarantineKind.MALFORMED_BUNDLE, src, "Bundle.entry is not a list")
        return
    file = src.file
    prefix = f"{src.position}." if src.position else ""
    # References may point forward, so every fullUrl is known before the first entry is handed on; what
    # one resolves to ('Type/id') is worked out when a reference asks for it, most are never asked for.
    by_url: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if isinstance(entry, dict):
            full_url = entry.get("fullUrl")
            if full_url and isinstance(full_url, str):
                resource = entry.get("resource")
                if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                    by_url[full_url] = resource  # the last entry of a fullUrl wins
    targets: dict[str, str] = {}

    def resolve(ref: str) -> str:
        target = targets.get(ref)
        if target is None:
            resource = by_url.get(ref)
            if resource is None:
                target = plain_resolver(ref)
            else:
                target = f"{resource['resourceType']}/{_entry_id(resource, ref)}"
            targets[ref] = target
        return target

    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue  # e.g. a DELETE in a transaction or a history entry without a body
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            yield Rejected(
                QuarantineKind.NOT_FHIR,
                Src(file, f"{prefix}entry[{index}]"),
                "Bundle entry resource has no resourceType",
            )
            continue
        if resource_type == "Bundle":
            entry_src = Src(file, f"{prefix}entry[{index}]")
            if depth >= MAX_BUNDLE_DEPTH:
                yield Rejected(
                    QuarantineKind.MALFORMED_BUNDLE,
                    entry_src,
                    f"Bundle nested deeper than {MAX_BUNDLE_DEPTH} levels",
                )
                continue
            yield from _read_bundle(resource, entry_src, depth + 1)
            continue
        id_ = resource.get("id")
        if not isinstance(id_, str) or not id_:
            full_url = entry.get("fullUrl")
            id_ = _entry_id(resource, full_url if isinstance(full_url, str) else None)
        yield _BundleEntry(resource, file, prefix, index, resolve, id_)


# ---------------------------------------------------------------------------------------------- parts

PART_BYTES = 8 * 1024 * 1024
"""How much input one part of a parallel ingest reads, at most (one file can be one part or several)."""


@dataclass(frozen=True, slots=True)
class InputPart:
    """A file, or a range of lines of a plain (not gzipped) NDJSON file: a unit of work for parallel
    ingest. ``start`` and ``end`` are byte offsets at line boundaries (``end`` None: to the end of the file);
    ``first_line`` is the number of the line at ``start``, so quarantine positions read as they would for
    the whole file."""

    path: Path
    size: int
    start: int = 0
    end: int | None = None
    first_line: int = 1


def plan_parts(paths: list[Path], part_bytes: int | None = None) -> list[InputPart]:
    """The files as parts, in input order; plain NDJSON files larger than ``part_bytes`` (default
    ``PART_BYTES``) are cut at line boundaries into ranges of about that size (gzip cannot be read from the
    middle, so .gz stays whole)."""
    if part_bytes is None:
        part_bytes = PART_BYTES
    parts: list[InputPart] = []
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # read_file reports it, in its place
        if size <= part_bytes or not _is_ndjson_name(path) or path.name.lower().endswith(".gz"):
            parts.append(InputPart(path, size))
            continue
        try:
            parts.extend(_ndjson_ranges(path, size, part_bytes))
        except OSError:
            parts.append(InputPart(path, size))  # read whole: read_file says what is wrong with it
    return parts


def _ndjson_ranges(path: Path, size: int, part_bytes: int) -> list[InputPart]:
    ranges: list[InputPart] = []
    start, line = 0, 1
    with open(path, "rb") as handle:
        while start < size:
            handle.seek(min(start + part_bytes, size))
            handle.readline()  # on to the end of the line the cut falls in
            end = handle.tell()
            if end >= size:
                ranges.append(InputPart(path, size - start, start, None, line))
                break
            handle.seek(start)
            newlines, remaining = 0, end - start
            while remaining > 0:
                block = handle.read(min(remaining, 1 << 22))
                if not block:
                    break
                newlines += block.count(b"\n")
                remaining -= len(block)
            ranges.append(InputPart(path, end - start, start, end, line))
            start, line = end, line + newlines
    return ranges


def read_part(part: InputPart) -> Iterator[InputItem | Rejected]:
    """The resources of one part: ``read_file`` for a whole file, the lines of its range otherwise."""
    if part.start == 0 and part.end is None:
        yield from read_file(part.path)
        return
    name = str(part.path)
    number = part.first_line - 1
    position = part.start
    try:
        with open(part.path, "rb") as handle:
            handle.seek(part.start)
            for line in handle:
                if part.end is not None and position >= part.end:
                    break
                position += len(line)
                number += 1
                yield from ndjson_line(name, number, line)
    except OSError as exc:
        yield unreadable(Src(name, f"after line {number}" if number else ""), exc)
