"""File sink: NDJSON per resource type plus quarantine, written atomically and readable by the owner only."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import ConfigError
from ..quarantine import QuarantineEntry
from .base import SinkStats

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def open_private(path: Path) -> IO[bytes]:
    """Create (or truncate) a file that only its owner can read or write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "wb")


def write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp) as fh:
        fh.write(data)
    os.replace(tmp, path)


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)


def check_output_dir(path: str | os.PathLike[str], setting: str) -> Path:
    """The output folder, created if need be and proven writable before any work (a configuration error
    naming the folder and the setting otherwise, not a failure at the end of the run)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"the output folder {folder} ({setting}) is not a folder")
    try:
        ensure_private_dir(folder)
        fd, probe = tempfile.mkstemp(prefix=".fhir-cat2-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        cause = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write to the output folder {folder} ({setting}): {cause}") from None
    return folder


class NdjsonSink:
    """Writes ``DIR/<ResourceType>.ndjson`` and ``DIR/quarantine.ndjson``; files appear only on close().
    A ``Sink`` (``fhir_cat2.sinks.base``)."""

    def __init__(
        self, out_dir: str | os.PathLike[str], kinds: tuple[str, ...] = ("Claim", "MeasureReport")
    ) -> None:
        self.out_dir = Path(out_dir)
        ensure_private_dir(self.out_dir)
        self._handles: dict[str, IO[bytes]] = {}
        self._final: dict[str, Path] = {}
        self._stats = SinkStats()
        for name in (*kinds, "quarantine"):
            self._open(name)

    def _open(self, name: str) -> IO[bytes]:
        final = self.out_dir / f"{name}.ndjson"
        handle = open_private(final.with_name(final.name + ".tmp"))
        self._handles[name] = handle
        self._final[name] = final
        return handle

    @property
    def stats(self) -> SinkStats:
        return self._stats

    def write(self, resource: dict[str, Any]) -> None:
        name = resource["resourceType"]
        handle = self._handles.get(name) or self._open(name)
        handle.write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))
        self._stats.add(name, "written")

    def write_line(self, resource_type: str, line: bytes) -> None:
        handle = self._handles.get(resource_type) or self._open(resource_type)
        handle.write(line)
        handle.write(b"\n")
        self._stats.add(resource_type, "written")

    def quarantine_line(self, line: bytes) -> None:
        handle = self._handles["quarantine"]
        handle.write(line)
        handle.write(b"\n")

    def quarantine(self, entry: QuarantineEntry) -> None:
        self._handles["quarantine"].write(orjson.dumps(entry.to_json(), option=orjson.OPT_APPEND_NEWLINE))

    def expect(self, candidates: Iterable[tuple[str, str, str | None]]) -> None:
        """Files hold this run's output only: nothing of earlier runs to withdraw."""

    def close(self) -> None:
        for name, handle in self._handles.items():
            handle.close()
            final = self._final[name]
            os.replace(final.with_name(final.name + ".tmp"), final)
        self._handles.clear()

    def abort(self) -> None:
        for name, handle in self._handles.items():
            handle.close()
            final = self._final[name]
            final.with_name(final.name + ".tmp").unlink(missing_ok=True)
        self._handles.clear()
