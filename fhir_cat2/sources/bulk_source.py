"""``sync --source bulk``: a live server read through FHIR Bulk Data ``$export`` (the client is ``bulk.py``).

One run:
1. resume the export an earlier run left (its ``ExportJob`` is in the state file, noted as soon as the
   server accepted the kick-off and again after every file), when it asked for the same thing and has not
   expired; else kick off ``$export`` at system, ``Patient`` or ``Group/{id}`` level with ``_type`` = the
   types the rules read and, for an incremental run, ``_since`` = the last watermark;
2. poll (Retry-After, backoff, ``X-Progress`` shown) up to ``source.bulk.max_wait_minutes`` (then
   ``BulkExportTimeout``, exit 7: the export goes on and the next run resumes it);
3. the manifest's ``transactionTime`` (the server's clock, never ours) is the run's ``until``: the watermark
   moves to it only when the run completes, as in search mode;
4. a **full** export (first run, no watermark) streams its resources into the pipeline while the other files
   still download. An **incremental** (``_since``) export names only what changed, and a measure needs all of
   a patient's data for the period, so its resources only say *who* is affected: those patients' whole
   context is then fetched with the patient-scoped searches search mode uses after its change scan
   (``ServerSource.contexts``). Cost: one batched search per read type per ``sync.patient_batch`` affected
   patients, on top of the export; the same as a search-mode sync of the same changes.
5. ``deleted`` entries (Bulk Data 2.0): a deleted resource names no patient. A deleted Encounter is looked
   up among our Claims (``Claim?encounter=...`` tagged as ours): its patient is re-evaluated, and the Claim
   is offered to the sink as a candidate, so the sink withdraws it when the patient's data no longer
   supports it. Other deleted types (an Observation, a Condition) are counted and logged only: their
   patient is unknown once they are gone, so what they supported stays until that patient changes again
   or a full run (a new job, or a state file without a watermark) re-reads everything.
6. ``error`` files (OperationOutcome NDJSON) become quarantine entries (kind ``export-error``) in
   ``quarantine.ndjson`` and the run report, as do bad lines (with file path and line number).

No file is downloaded twice: the resources of each output file are kept, as they stream, in a private
folder beside the state file (``<state>.bulk/<job>/``, created 0700 under the process's umask 077), and a
file counts as done (``files_done``) once its copy is complete. A resumed run reads the done files from
there and downloads only the others, so every patient is still evaluated on all of their data. The folder
is removed when the run completes, or the export is cancelled or replaced. (Error and deleted files are
small and downloaded again.) Ctrl-C or SIGTERM sends ``DELETE`` to the status URL (cancel) and forgets the
export unless ``source.bulk.keep_export`` (``--keep-export``): then the next run resumes it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..emit.ids import TAG_CODE, TAG_SYSTEM
from ..errors import BulkExportExpired, ResourceGoneError
from ..sinks.files import ensure_private_dir
from ..sinks.planner import business_key
from ..state import SyncState, parse_instant
from .bulk import BulkExport, Deletion, ExportJob, Level, Manifest, ManifestFile
from .files import InputItem, Rejected, ndjson_line
from .server import ChangeScan, ServerSource, is_ours, patient_of

log = logging.getLogger("fhir_cat2.sources.bulk_source")


class BulkSource:
    """Pipeline input from one Bulk Data export (see the module docstring)."""

    def __init__(
        self,
        exporter: BulkExport,
        search: ServerSource,
        *,
        level: Level,
        group: str | None,
        keep_export: bool = False,
        state: SyncState | None = None,
        note_key: str = "",
        on_phase: Callable[[str], None] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.exporter = exporter
        self.search = search
        self.level = level
        self.group = group
        self.keep_export = keep_export
        self.state = state
        self.note_key = note_key
        self.on_phase = on_phase
        self.scan = ChangeScan()
        self.transaction_time: datetime | None = None
        self.resumed = False
        self.deleted: Counter[str] = Counter()
        """Deleted resources the export listed, per type."""
        self.candidates: list[tuple[str, str, str | None]] = []
        """Our Claims for deleted Encounters: (type, business key, encounter) for ``Sink.expect``."""
        self.job: ExportJob | None = None
        self.cache_dir = cache_dir
        """Where the output files' resources are kept until the run completes (None: nowhere)."""
        self.files_reused = 0
        self.marks: dict[str, float] = {}
        """Monotonic instants of the run's phases: ``started``, ``manifest`` (the export is complete) and
        ``last_byte`` (every file read), for the run report's timings."""

    # ------------------------------------------------------------------------------------- the run

    def items(self, since: str | None) -> Iterator[InputItem | Rejected]:
        """The run's pipeline input; ``since`` (an instant) makes it an incremental run."""
        self.marks["started"] = time.monotonic()
        manifest = self._manifest(since)
        self.marks["manifest"] = time.monotonic()
        self.transaction_time = parse_instant(manifest.transaction_time)
        self._phase("download")
        if since is None:
            yield from self._full(manifest)
        else:
            yield from self._incremental(manifest)
        self.marks["last_byte"] = time.monotonic()

    def timings(self, written: float) -> dict[str, float]:
        """Seconds spent exporting (kick-off or resume to manifest), downloading (manifest to last byte)
        and after the last byte until ``written`` (the last output written): how much of the evaluation
        the downloads did not hide."""
        marks = self.marks
        if not {"started", "manifest", "last_byte"} <= marks.keys():
            return {}
        return {
            "export": round(marks["manifest"] - marks["started"], 3),
            "download": round(marks["last_byte"] - marks["manifest"], 3),
            "after_last_byte": round(written - marks["last_byte"], 3),
        }

    def interrupted(self) -> None:
        """Ctrl-C or SIGTERM: cancel the export on the server unless it is to be kept."""
        self._stop()

    def finished(self) -> None:
        """The run completed: the export is used up; the next run starts a new one."""
        if self.state is not None:
            self.state.forget_note(self.note_key)
        self._drop_cache()

    # ------------------------------------------------------------------------------------ export

    def _manifest(self, since: str | None) -> Manifest:
        types = tuple(self.search.types)
        job = self._resumable(types, since)
        if job is not None:
            self.job, self.resumed = job, True
            log.info("resuming the bulk export an earlier run started (no new kick-off)")
            try:
                self._phase("export")
                return self._poll(job)
            except BulkExportExpired:
                log.warning("the bulk export an earlier run started has expired; kicking off again")
                self.resumed = False
        self._drop_cache()  # an earlier export's files
        job = self.exporter.kick_off(self.level, group=self.group, types=types, since=since)
        self.job = job
        self._remember(job)
        self._phase("export")
        return self._poll(job)

    def _poll(self, job: ExportJob) -> Manifest:
        manifest = self.exporter.poll(job)
        self._remember(job)  # Expires may have come with the manifest
        return manifest

    def _resumable(self, types: tuple[str, ...], since: str | None) -> ExportJob | None:
        if self.state is None:
            return None
        noted = self.state.noted(self.note_key)
        if noted is None:
            return None
        try:
            job = ExportJob.from_json(orjson.loads(noted))
        except (ValueError, KeyError, TypeError):
            return None
        same = (job.level, job.group, job.types, job.since) == (self.level, self.group, types, since)
        if not same:
            log.info("an earlier run's bulk export asked for something else; kicking off a new one")
            return None
        if job.expired(datetime.now(UTC)):
            log.warning("the bulk export an earlier run started has expired; kicking off again")
            return None
        return job

    def _remember(self, job: ExportJob) -> None:
        if self.state is not None:
            self.state.note(self.note_key, orjson.dumps(job.to_json()).decode())

    def _stop(self) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        if self.keep_export:
            log.warning("the bulk export is left running (keep_export); the next run resumes it")
            return
        try:
            self.exporter.cancel(job.status_url)
        except Exception as exc:  # stopping anyway: say so, the export expires on the server by itself
            log.warning("could not cancel the bulk export on the server: %s", type(exc).__name__)
        if self.state is not None:
            self.state.forget_note(self.note_key)
        self._drop_cache()

    def _drop_cache(self) -> None:
        if self.cache_dir is not None and self.cache_dir.exists():
            shutil.rmtree(self.cache_dir, ignore_errors=True)

    def _phase(self, name: str) -> None:
        if self.on_phase is not None:
            self.on_phase(name)

    # ----------------------------------------------------------------------------------- reading

    def _downloaded(self, manifest: Manifest) -> Iterator[InputItem | Rejected | Deletion]:
        """The manifest's items: output files an earlier run completed from their kept copies, the others
        downloaded (and kept, as they stream)."""
        job = self.job
        assert job is not None
        cache = self.cache_dir
        kept = {
            file.key: cache / f"{file.key}.ndjson"
            for file in manifest.output
            if cache is not None and file.key in job.files_done and (cache / f"{file.key}.ndjson").is_file()
        }
        if kept:
            log.info("bulk export: %d files read from the copies an earlier run kept", len(kept))
        for file in manifest.output:
            if file.key in kept:
                self.files_reused += 1
                with kept[file.key].open("rb") as lines:
                    for number, line in enumerate(lines, 1):
                        yield from ndjson_line(file.label, number, line.rstrip(b"\n"))
        copies: dict[str, tuple[Path, BinaryIO]] = {}
        by_label = {file.label: file for file in manifest.output}

        def copy_of(label: str) -> BinaryIO | None:
            if cache is None or label not in by_label:
                return None
            key = by_label[label].key
            if key not in copies:
                ensure_private_dir(cache)
                part = cache / f"{key}.part"
                copies[key] = (part, part.open("wb"))
            return copies[key][1]

        def file_done(file: ManifestFile) -> None:
            if cache is not None and file.kind == "output":
                part, handle = copies.pop(file.key, (cache / f"{file.key}.part", None))
                if handle is None:  # a file without a resource
                    ensure_private_dir(cache)
                    part.touch()
                else:
                    handle.close()
                part.replace(cache / f"{file.key}.ndjson")
            job.mark_done(file)
            self._remember(job)

        try:
            for item in self.exporter.download(manifest, done=kept, on_file_done=file_done):
                if isinstance(item, InputItem):
                    handle = copy_of(item.src.file)
                    if handle is not None:
                        handle.write(orjson.dumps(item.resource) + b"\n")
                yield item
        finally:
            for _, handle in copies.values():
                handle.close()

    def _full(self, manifest: Manifest) -> Iterator[InputItem | Rejected]:
        for item in self._downloaded(manifest):
            if isinstance(item, Deletion):
                self.deleted[item.ref.split("/", 1)[0]] += 1
                continue
            if isinstance(item, InputItem):
                self._changed(item.resource)
            yield item
        self._log_deleted()

    def _incremental(self, manifest: Manifest) -> Iterator[InputItem | Rejected]:
        deleted_encounters: list[str] = []
        for item in self._downloaded(manifest):
            if isinstance(item, Deletion):
                kind = item.ref.split("/", 1)[0]
                self.deleted[kind] += 1
                if kind == "Encounter":
                    deleted_encounters.append(item.ref)
            elif isinstance(item, InputItem):
                self._changed(item.resource)
            else:
                yield item  # a bad line or an export error: quarantined
        self._log_deleted()
        for encounter in deleted_encounters:
            self._claims_for(encounter)
        log.info(
            "%d patients affected by %d changed resources; fetching their whole context",
            len(self.scan.patients),
            sum(self.scan.changed.values()),
        )
        self._phase("fetch")
        yield from self.search.contexts(self.scan.patients)

    def _changed(self, resource: dict[str, Any]) -> None:
        resource_type = str(resource.get("resourceType"))
        if resource_type == "Claim" and is_ours(resource):
            return  # our own write-back: it changes nothing clinical
        self.scan.changed[resource_type] += 1
        patient_id = patient_of(resource)
        if patient_id is None:
            self.scan.unattached[resource_type] += 1
        else:
            self.scan.patients.add(patient_id)

    def _claims_for(self, encounter: str) -> None:
        """Our Claims for a deleted Encounter: their patients are re-evaluated and the Claims offered for
        withdrawal."""
        params = [("encounter", encounter), ("_tag", f"{TAG_SYSTEM}|{TAG_CODE}")]
        try:
            pages = list(self.search.client.search_pages("Claim", params))
        except ResourceGoneError:
            return
        for page in pages:
            for entry in page.entries:
                claim = entry.get("resource")
                if not isinstance(claim, dict) or not is_ours(claim):
                    continue
                patient_id = patient_of(claim)
                key = business_key(claim)
                if patient_id is None or key is None:
                    continue
                self.scan.patients.add(patient_id)
                self.candidates.append(("Claim", key, encounter))

    def _log_deleted(self) -> None:
        if self.deleted:
            log.info(
                "the export lists deleted resources: %s",
                ", ".join(f"{n} {t}" for t, n in sorted(self.deleted.items())),
            )
