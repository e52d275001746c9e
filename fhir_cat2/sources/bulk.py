"""A FHIR Bulk Data Access ($export) client: kick-off, status polling, cancel, and streamed, concurrent
downloads of the manifest's files as pipeline input. The ground for ``sync --source bulk`` (not wired yet).

What the specification asks (HL7 FHIR Bulk Data Access IG, 2.0):

* **Kick-off**: ``GET [base]/$export``, ``[base]/Patient/$export`` or ``[base]/Group/[id]/$export`` with
  ``Accept: application/fhir+json`` and ``Prefer: respond-async``; ``_type`` (comma-separated resource
  types), ``_since`` (an instant: resources changed after it), ``_typeFilter`` (a search query per type,
  repeatable). The server answers 202 Accepted with ``Content-Location``, the status URL; a refusal is a
  4xx/5xx with an OperationOutcome.
* **Status**: GET the status URL: 202 while the export runs (optional ``X-Progress`` text, optional
  ``Retry-After``, seconds or an HTTP date), 200 with the manifest when it is complete: ``transactionTime``,
  ``requiresAccessToken``, ``output`` [{type, url, count}], ``error`` (OperationOutcome NDJSON) and, in 2.0,
  ``deleted`` (NDJSON of transaction Bundles whose entries are ``DELETE Type/id``); optionally an
  ``Expires`` header. A 4xx/5xx with an OperationOutcome says the export failed. ``DELETE`` on the status URL
  cancels the export (202).
* **Files**: GET each URL with ``Accept: application/fhir+ndjson``, carrying the access token only when the
  manifest says ``requiresAccessToken: true``; one resource per line.

Our choices:

* All HTTP goes through ``FhirClient`` (timeouts, retry families, no query strings in logs). 429/5xx on the
  kick-off, the status URL and a file are retried by its usual policy (Retry-After honoured).
* Polling honours ``Retry-After`` (at least ``PollPolicy.first_wait`` seconds, so a server saying 0 cannot
  make us spin); without one the wait doubles from ``first_wait`` up to ``max_interval``. After ``max_wait``
  in all, ``BulkExportTimeout`` (exit 7): the export keeps running on the server, and polling its status
  URL again (``ExportJob``) picks it up. ``X-Progress`` is server text: it goes to the callback and the log
  with anything URL-like replaced and cut to ``PROGRESS_CHARS``.
* A status URL that answers 404/410 is ``BulkExportExpired`` (kick off a new export); a kick-off refused with
  an OperationOutcome is ``BulkExportError`` whose message summarises its issues by code and element path
  (``errors.outcome_summary``: the diagnostics text stays out of logs). 401/403 stay ``AuthError``.
* A file URL must be on the server's origin or on a file host the caller allows; anything else is refused
  before any download (a ConfigError). The token goes only to the server's own origin and never through a
  redirect: a 307 to storage (Oracle Health) is followed without it.
* Downloads: up to ``concurrency`` files at once, each on its own thread and session, read in chunks and cut
  into lines (never a whole file in memory; gzip by Content-Encoding, or a gzip body, is inflated as it
  streams); lines go to the consumer in batches through a bounded queue *while other files still download*
  (a full queue pauses the downloads) and are parsed on the consumer's thread, so the download threads only
  wait on sockets and do not compete for the GIL. Each line becomes a ``files.InputItem`` or a
  ``files.Rejected`` with ``Src(<the file URL's path>, "line N")``: a bad line is quarantined, never the
  file. Error-file lines
  become ``Rejected`` of kind ``export-error``; deleted-file entries become ``Deletion`` items.
* A connection broken mid-file restarts that file from its beginning and skips the lines already handed on
  (nothing duplicated), within the retry policy's attempts; a file that stays broken, or that is gone
  (404/410), ends the download with an error rather than evaluate patients on part of their data.
* Resume: ``ExportJob`` holds what a later run needs (level, parameters, status URL, when, ``Expires``, the
  keys of the files already done); ``download(..., done=job.files_done, on_file_done=job.mark_done)``. A
  file counts as done once its last item has been handed to the consumer. File keys are a hash of the
  URL, so a signed URL's query is not kept.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import queue
import re
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urljoin

import orjson
import requests
import urllib3

from ..errors import (
    BulkExportError,
    BulkExportExpired,
    BulkExportTimeout,
    ConfigError,
    FatalServerError,
    PreconditionFailedError,
    QuarantineKind,
    ResourceGoneError,
    ServerUnavailableError,
    outcome_summary,
)
from ..fhir import FHIR_JSON, FhirClient, origin, parse_retry_after, path_only, refuse_insecure
from .files import InputItem, Rejected, ndjson_line
from .records import Src

__all__ = [
    "BulkExport",
    "BulkItem",
    "Deletion",
    "ExportJob",
    "Manifest",
    "ManifestFile",
    "PollPolicy",
]

log = logging.getLogger("fhir_cat2.bulk")

Level = Literal["system", "patient", "group"]
FileKind = Literal["output", "error", "deleted"]

DEFAULT_CONCURRENCY = 4
BATCH_LINES = 200
"""Lines a download hands on at once (one queue operation per batch, not per line); they are parsed on
the consumer's thread, so the download threads only wait on sockets (no fight for the GIL)."""
QUEUE_BATCHES = 16
"""Batches waiting for the consumer, at most: past it the downloads wait (memory stays bounded)."""
CHUNK_BYTES = 64 * 1024
PROGRESS_CHARS = 80
_URLISH = re.compile(r"\S*://\S*|\S*[?&]\S*=\S*")


@dataclass(frozen=True)
class PollPolicy:
    first_wait: float = 1.0
    """Seconds before the second poll when the server gives no Retry-After; also the least wait."""
    max_interval: float = 60.0
    """The wait without Retry-After doubles up to this."""
    max_wait: float = 6 * 3600.0
    """Give up (BulkExportTimeout) after polling this long in all."""


@dataclass(frozen=True)
class ManifestFile:
    kind: FileKind
    type: str
    url: str
    count: int | None = None

    @property
    def key(self) -> str:
        """What ``ExportJob.files_done`` records: stable for the URL, without keeping its query."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:24]

    @property
    def label(self) -> str:
        """How quarantine entries and logs name the file: its URL's path, no host, no query."""
        return path_only(self.url)


@dataclass(frozen=True)
class Manifest:
    transaction_time: str
    requires_access_token: bool
    output: tuple[ManifestFile, ...]
    error: tuple[ManifestFile, ...] = ()
    deleted: tuple[ManifestFile, ...] = ()

    @property
    def files(self) -> tuple[ManifestFile, ...]:
        return self.output + self.error + self.deleted

    @classmethod
    def from_json(cls, body: Any, status_url: str) -> Manifest:
        """The manifest of a completed export; relative file URLs are taken against the status URL."""
        if not isinstance(body, dict) or not isinstance(body.get("transactionTime"), str):
            raise BulkExportError("bulk export status: the completed export's answer is no manifest")
        lists: dict[FileKind, tuple[ManifestFile, ...]] = {}
        for kind in ("output", "error", "deleted"):
            entries = body.get(kind) or []
            if not isinstance(entries, list):
                raise BulkExportError(f"bulk export manifest: {kind} is not a list")
            files = []
            for entry in entries:
                url = entry.get("url") if isinstance(entry, dict) else None
                if not isinstance(url, str) or not url:
                    raise BulkExportError(f"bulk export manifest: an entry of {kind} has no url")
                count = entry.get("count")
                files.append(
                    ManifestFile(
                        kind,
                        str(entry.get("type") or ""),
                        urljoin(status_url, url),
                        count if isinstance(count, int) else None,
                    )
                )
            lists[kind] = tuple(files)
        return cls(
            body["transactionTime"],
            body.get("requiresAccessToken") is True,
            lists["output"],
            lists["error"],
            lists["deleted"],
        )


@dataclass
class ExportJob:
    """What a later run needs to pick up an export: store ``to_json()``, resume with ``from_json``."""

    level: Level
    status_url: str
    requested_at: str
    """When we kicked it off (ISO instant, our clock: for the record only, never a watermark)."""
    group: str | None = None
    types: tuple[str, ...] = ()
    since: str | None = None
    type_filters: tuple[str, ...] = ()
    expires: str | None = None
    """The server's ``Expires`` (ISO instant) once it has sent one."""
    files_done: list[str] = field(default_factory=list)
    """``ManifestFile.key`` of every file whose items have all been handed on."""

    def mark_done(self, file: ManifestFile) -> None:
        if file.key not in self.files_done:
            self.files_done.append(file.key)

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and datetime.fromisoformat(self.expires) <= now

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "group": self.group,
            "types": list(self.types),
            "since": self.since,
            "type_filters": list(self.type_filters),
            "status_url": self.status_url,
            "requested_at": self.requested_at,
            "expires": self.expires,
            "files_done": list(self.files_done),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportJob:
        level = data["level"]
        if level not in ("system", "patient", "group"):
            raise ValueError(f"unknown export level {level!r}")
        return cls(
            level=level,
            status_url=str(data["status_url"]),
            requested_at=str(data["requested_at"]),
            group=data.get("group"),
            types=tuple(data.get("types") or ()),
            since=data.get("since"),
            type_filters=tuple(data.get("type_filters") or ()),
            expires=data.get("expires"),
            files_done=list(data.get("files_done") or ()),
        )


@dataclass(frozen=True, slots=True)
class Deletion:
    """A resource the export says was deleted since ``_since`` (a ``deleted`` file entry)."""

    ref: str
    """``Type/id``."""
    src: Src


BulkItem = InputItem | Rejected | Deletion


class BulkExport:
    """Bulk Data export against one server, through its ``FhirClient``."""

    def __init__(
        self,
        client: FhirClient,
        *,
        poll: PollPolicy | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        file_hosts: Collection[str] = (),
        allow_any_file_host: bool = False,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.poll_policy = poll or PollPolicy()
        self.concurrency = max(1, concurrency)
        self.file_hosts = frozenset(origin(url) for url in file_hosts)
        """Origins other than the server's that export files may come from (base URLs of storage)."""
        self.allow_any_file_host = allow_any_file_host
        self.on_progress = on_progress

    # ------------------------------------------------------------------------------------ kick-off

    def kick_off(
        self,
        level: Level,
        *,
        group: str | None = None,
        types: Collection[str] = (),
        since: str | None = None,
        type_filters: Collection[str] = (),
    ) -> ExportJob:
        """Ask the server for an export; returns the job to poll."""
        if level == "group":
            if not group:
                raise ConfigError("a Group-level export needs a group id")
            path = f"Group/{quote(group, safe='')}/$export"
        elif level == "patient":
            path = "Patient/$export"
        else:
            path = "$export"
        params: list[tuple[str, str]] = []
        if types:
            params.append(("_type", ",".join(types)))
        if since:
            params.append(("_since", since))
        params += [("_typeFilter", query) for query in type_filters]
        label = f"bulk export kick-off ({level})"
        requested_at = datetime.now(UTC).isoformat()
        try:
            response = self.client.request(
                "GET",
                path,
                params=params,
                headers={"Accept": FHIR_JSON, "Prefer": "respond-async"},
                what=label,
                require_json=False,
            )
        except (FatalServerError, ResourceGoneError, PreconditionFailedError) as exc:
            raise BulkExportError(
                f"{label}: the server refused the export (HTTP {exc.status})",
                status=exc.status,
                outcome=exc.outcome,
            ) from None
        location = response.headers.get("Content-Location")
        if response.status != 202 or not location:
            raise BulkExportError(
                f"{label}: the server answered HTTP {response.status}"
                + ("" if location else " without a Content-Location")
                + ", not 202 Accepted with a status URL: does it support $export at this level?"
            )
        status_url = urljoin(self.client.base_url + "/", location)
        if origin(status_url) != self.client.origin:
            raise BulkExportError(
                f"{label}: the server's status URL is on another origin than the server; refusing to poll"
                " it (the access token would go with each poll)"
            )
        job = ExportJob(
            level=level,
            status_url=status_url,
            requested_at=requested_at,
            group=group,
            types=tuple(types),
            since=since,
            type_filters=tuple(type_filters),
            expires=_expires(response.headers.get("Expires")),
        )
        log.info("bulk export kicked off (%s level, %d types)", level, len(job.types))
        return job

    # ------------------------------------------------------------------------------------- status

    def poll(self, job: ExportJob) -> Manifest:
        """Poll the job's status URL until the export is complete; its manifest."""
        policy = self.poll_policy
        started = time.monotonic()
        slept = 0.0
        backoff = policy.first_wait
        last_progress: str | None = None
        label = "bulk export status"
        while True:
            try:
                response = self.client.request("GET", job.status_url, what=label, require_json=False)
            except ResourceGoneError as exc:
                raise BulkExportExpired(
                    f"{label}: HTTP {exc.status}: the export is gone on the server (expired or cancelled);"
                    " kick off a new export",
                    status=exc.status,
                    outcome=exc.outcome,
                ) from None
            except (FatalServerError, PreconditionFailedError) as exc:
                raise BulkExportError(
                    f"{label}: the export failed on the server (HTTP {exc.status})",
                    status=exc.status,
                    outcome=exc.outcome,
                ) from None
            job.expires = _expires(response.headers.get("Expires")) or job.expires
            if response.status == 200:
                manifest = Manifest.from_json(response.body, job.status_url)
                log.info(
                    "bulk export complete: %d output, %d error, %d deleted files",
                    len(manifest.output),
                    len(manifest.error),
                    len(manifest.deleted),
                )
                return manifest
            if response.status != 202:
                raise BulkExportError(f"{label}: unexpected HTTP {response.status}")
            progress = response.headers.get("X-Progress")
            if progress:
                text = progress_text(progress)
                if text != last_progress:
                    log.info("bulk export in progress: %s", text)
                    last_progress = text
                if self.on_progress is not None:
                    self.on_progress(text)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                wait = backoff
                backoff = min(backoff * 2, policy.max_interval)
            else:
                wait = max(retry_after, policy.first_wait)
            # slept counts too: it is what a test's patched sleep advances, and never more than the clock
            remaining = policy.max_wait - max(time.monotonic() - started, slept)
            if remaining <= 0:
                raise BulkExportTimeout(
                    f"{label}: the export is still running after {policy.max_wait:.0f}s; it goes on on the"
                    " server, and a run that resumes it polls the same status URL"
                )
            wait = min(wait, remaining)
            log.debug("%s: 202; next poll in %.1fs", label, wait)
            _sleep(wait)
            slept += wait

    def cancel(self, status_url: str) -> bool:
        """Cancel an export (DELETE its status URL). False when the server no longer knows it."""
        try:
            self.client.request("DELETE", status_url, what="bulk export cancel", require_json=False)
        except ResourceGoneError:
            log.info("bulk export cancel: the server no longer knows the export")
            return False
        log.info("bulk export cancelled on the server")
        return True

    # ---------------------------------------------------------------------------------- downloads

    def download(
        self,
        manifest: Manifest,
        *,
        done: Collection[str] = (),
        on_file_done: Callable[[ManifestFile], None] | None = None,
    ) -> Iterator[BulkItem]:
        """Every item of the manifest's files (output, error, deleted) not in ``done`` (file keys), as they
        arrive from up to ``concurrency`` downloads; ``on_file_done`` is told each file whose items have
        all been handed on. Closing the iterator stops the downloads."""
        files = [file for file in manifest.files if file.key not in done]
        for file in files:
            self._check_host(file.url)
        if len(files) < len(manifest.files):
            log.info("bulk export: %d files already done, skipped", len(manifest.files) - len(files))
        if not files:
            return
        yield from self._pool(files, manifest.requires_access_token, on_file_done)

    def _check_host(self, url: str) -> None:
        refuse_insecure(url, "a bulk export file", self.client.allow_insecure_http)
        file_origin = origin(url)
        if file_origin == self.client.origin or file_origin in self.file_hosts or self.allow_any_file_host:
            return
        scheme, host, port = file_origin
        raise ConfigError(
            f"the export manifest lists a file on {scheme}://{host}:{port}, not on the FHIR server's origin;"
            " refused: a file host other than the server's must be allowed explicitly"
        )

    def _pool(
        self,
        files: list[ManifestFile],
        requires_token: bool,
        on_file_done: Callable[[ManifestFile], None] | None,
    ) -> Iterator[BulkItem]:
        todo: queue.SimpleQueue[ManifestFile] = queue.SimpleQueue()
        for file in files:
            todo.put(file)
        out: queue.Queue[_Message] = queue.Queue(maxsize=QUEUE_BATCHES)
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=self._worker, args=(todo, out, stop, requires_token), name=f"bulk-download-{n}"
            )
            for n in range(min(self.concurrency, len(files)))
        ]
        for worker in workers:
            worker.start()
        running = len(workers)
        try:
            while running:
                message = out.get()
                if isinstance(message, _FileDone):
                    log.debug("bulk export file done: %s", message.file.type or message.file.kind)
                    if on_file_done is not None:
                        on_file_done(message.file)
                elif isinstance(message, _WorkerEnd):
                    running -= 1
                elif isinstance(message, _Failed):
                    raise message.error
                else:
                    for number, line in message.lines:
                        yield from _parse_line(message.file, number, line)
        finally:
            stop.set()
            while any(worker.is_alive() for worker in workers):
                _drain(out)  # a worker blocked on a full queue sees the stop once there is room
                for worker in workers:
                    worker.join(timeout=0.05)

    def _worker(
        self,
        todo: queue.SimpleQueue[ManifestFile],
        out: queue.Queue[_Message],
        stop: threading.Event,
        requires_token: bool,
    ) -> None:
        try:
            while not stop.is_set():
                try:
                    file = todo.get_nowait()
                except queue.Empty:
                    break
                batch: list[tuple[int, bytes]] = []
                for numbered_line in self._file_lines(file, requires_token, stop):
                    batch.append(numbered_line)
                    if len(batch) >= BATCH_LINES:
                        if not _put(out, _Batch(file, batch), stop):
                            return
                        batch = []
                if batch and not _put(out, _Batch(file, batch), stop):
                    return
                _put(out, _FileDone(file), stop)
        except Exception as exc:  # handed to the consumer's thread, which raises it
            _put(out, _Failed(exc), stop)
        finally:
            _put(out, _WorkerEnd(), stop)

    def _file_lines(
        self, file: ManifestFile, requires_token: bool, stop: threading.Event
    ) -> Iterator[tuple[int, bytes]]:
        """The numbered lines of one file; a connection broken mid-file starts it again, skipping the lines
        already handed on."""
        authenticate = requires_token and origin(file.url) == self.client.origin
        policy = self.client.retry
        label = f"bulk export file {file.label}"
        handed_on = 0
        failures = 0
        while True:
            try:
                for number, line in self._lines(file, authenticate, label):
                    if number <= handed_on:
                        continue
                    if stop.is_set():
                        return
                    yield number, line
                    handed_on = number
                return
            except _BrokenStream as exc:
                failures += 1
                if failures >= policy.attempts:
                    raise ServerUnavailableError(
                        f"{label}: the connection broke mid-file {failures} times ({exc})"
                    ) from None
                wait = min(policy.backoff_base * 2 ** (failures - 1), policy.backoff_max)
                log.warning(
                    "%s: connection broken after line %d (%s); reading the file again in %.1fs,"
                    " skipping the lines already read",
                    label,
                    handed_on,
                    exc,
                    wait,
                )
                _sleep(wait)
            except ResourceGoneError as exc:
                raise BulkExportExpired(
                    f"{label}: HTTP {exc.status}: the export file is gone (expired?); kick off a new export",
                    status=exc.status,
                    outcome=exc.outcome,
                ) from None
            except (FatalServerError, PreconditionFailedError) as exc:
                raise BulkExportError(
                    f"{label}: the server refused the file (HTTP {exc.status})",
                    status=exc.status,
                    outcome=exc.outcome,
                ) from None

    def _lines(self, file: ManifestFile, authenticate: bool, label: str) -> Iterator[tuple[int, bytes]]:
        """(line number, line) of a file as it streams; ``_BrokenStream`` when the body is cut short."""
        response = self.client.open_stream(file.url, authenticate=authenticate, what=label)
        number = 0
        try:
            pending = b""
            inflate: Any = None
            first = True
            for chunk in response.iter_content(CHUNK_BYTES):
                if first:
                    first = False
                    if chunk[:2] == b"\x1f\x8b":  # a gzip body without Content-Encoding (a .ndjson.gz)
                        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if inflate is not None:
                    chunk = inflate.decompress(chunk)
                lines = chunk.split(b"\n")
                lines[0] = pending + lines[0]
                pending = lines.pop()
                for line in lines:
                    number += 1
                    yield number, line
            if inflate is not None and not inflate.eof:
                raise _BrokenStream("gzip body cut short")
            if pending:
                number += 1
                yield number, pending
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            requests.ConnectionError,
            requests.Timeout,
            urllib3.exceptions.HTTPError,
            zlib.error,
        ) as exc:
            raise _BrokenStream(type(exc).__name__) from None
        finally:
            response.close()


def progress_text(value: str) -> str:
    """``X-Progress`` as it may be shown: no URL or query, printable, at most ``PROGRESS_CHARS``."""
    text = _URLISH.sub("<url>", value)
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text if len(text) <= PROGRESS_CHARS else text[: PROGRESS_CHARS - 3] + "..."


def _parse_line(file: ManifestFile, number: int, line: bytes) -> Iterator[BulkItem]:
    if file.kind == "output":
        yield from ndjson_line(file.label, number, line)
        return
    if not line.strip():
        return
    src = Src(file.label, f"line {number}")
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        yield Rejected(QuarantineKind.INVALID_JSON, src, f"not valid JSON: {exc}")
        return
    if file.kind == "error":
        yield _export_error(document, src)
    else:
        yield from _deletions(document, src)


def _export_error(document: Any, src: Src) -> Rejected:
    """An error-file line: the server could not export something. Its diagnostics can quote data, so they
    go into the reason (quarantine.ndjson only), and the kind is what logs and reports count."""
    if not isinstance(document, dict) or document.get("resourceType") != "OperationOutcome":
        return Rejected(QuarantineKind.NOT_FHIR, src, "error file line is not an OperationOutcome")
    issues = [i for i in document.get("issue") or [] if isinstance(i, dict)]
    words = [str(i.get("diagnostics") or (i.get("details") or {}).get("text") or "") for i in issues]
    reason = f"the server could not export some data ({outcome_summary(document) or 'no issues given'})"
    said = "; ".join(w for w in words if w)
    return Rejected(
        QuarantineKind.EXPORT_ERROR, src, f"{reason}; server diagnostics: {said}" if said else reason
    )


def _deletions(document: Any, src: Src) -> Iterator[BulkItem]:
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        yield Rejected(QuarantineKind.MALFORMED_BUNDLE, src, "deleted file line is not a Bundle")
        return
    for index, entry in enumerate(document.get("entry") or []):
        request = entry.get("request") if isinstance(entry, dict) else None
        url = request.get("url") if isinstance(request, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        parts = url.split("?", 1)[0].strip("/").split("/") if isinstance(url, str) else []
        where = Src(src.file, f"{src.position} entry[{index}]")
        if method != "DELETE" or len(parts) < 2 or not parts[-1] or not parts[-2]:
            yield Rejected(QuarantineKind.MALFORMED_BUNDLE, where, "deleted entry is not a DELETE of Type/id")
            continue
        yield Deletion(f"{parts[-2]}/{parts[-1]}", where)


def _expires(header: str | None) -> str | None:
    if not header:
        return None
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


class _BrokenStream(Exception):
    """A file's body ended before its end (reset, truncated chunk, cut gzip)."""


@dataclass(frozen=True, slots=True)
class _Batch:
    file: ManifestFile
    lines: list[tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class _FileDone:
    file: ManifestFile


@dataclass(frozen=True, slots=True)
class _WorkerEnd:
    pass


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


_Message = _Batch | _FileDone | _WorkerEnd | _Failed


def _put(out: queue.Queue[_Message], message: _Message, stop: threading.Event) -> bool:
    """Put, waiting for room, unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            out.put(message, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(out: queue.Queue[_Message]) -> None:
    while True:
        try:
            out.get_nowait()
        except queue.Empty:
            return


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time, so tests can patch time.sleep
