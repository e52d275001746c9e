"""``fhir-cat2 sync`` and ``fhir-cat2 record``: a live server through the same pipeline replay uses.

One run:
1. read the CapabilityStatement (the first response's Date header is the server's clock: ``until``);
2. per resource type, the window ``(watermark - overlap, until]`` (or ``--since/--until`` for a backfill);
3. find the patients with anything changed in the window, fetch their whole context in batches, and feed it
   to the Pipeline (replay's, unchanged);
4. emit through a sink: the server (idempotent write-back), or files (``--dry-run``); record mode only saves
   the pages the server returned, as fixtures replay reads. Before its own writes, a write-back re-sends the
   outbox of its write target (writes earlier runs could not deliver); what the server refuses now, or
   cannot take because it became unavailable, is kept in the outbox (exit 6 says so);
5. only when everything above completed, and every write is on the server or safely in the outbox, move
   the watermarks to ``until``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .codes import write_csv
from .config import AppConfig
from .core import expected_reports
from .errors import ConfigError
from .fhir import FhirClient, SearchPage, origin
from .gaps_csv import write_gaps_csv
from .job import emitted_types
from .pipeline import Pipeline, RunOptions
from .report import LiveFacts, RunReport
from .rules.loader import RuleSet
from .runs import RunTracker, Terminated, watermark_text
from .server_config import build_auth, build_client
from .sinks.base import Sink
from .sinks.files import NdjsonSink, ensure_private_dir, write_private
from .sinks.server import ServerSink
from .sources.bulk import BulkExport, PollPolicy
from .sources.bulk_source import BulkSource
from .sources.files import InputItem, Rejected
from .sources.patients import PatientFetch, PatientSource, group_members, read_patients_file
from .sources.server import ChangeScan, ServerSource, default_types, report_gaps, server_interactions
from .state import Outbox, SyncState, format_instant, format_until, parse_instant

log = logging.getLogger("fhir_cat2.sync")


@dataclass
class LiveSettings:
    """Everything a sync or record run needs, resolved from flags over config over defaults."""

    base_url: str
    state_path: str
    out: str
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False
    write_to: str | None = None
    source: str = "search"
    """``search`` (change scan, then patient searches), ``bulk`` (``$export``) or ``patients`` (one patient
    at a time: the members of ``group`` or ``config.source.patients_file``)."""
    group: str | None = None
    keep_export: bool = False

    @property
    def backfill(self) -> bool:
        return self.since is not None or self.until is not None


def parse_time_option(text: str | None, name: str) -> datetime | None:
    """--since/--until: a FHIR date or instant; a date means its midnight UTC; no zone means UTC."""
    if text is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?", text):
        raise ConfigError(
            f"{name} '{text}' is not a date or instant (e.g. 2025-06-01 or 2025-06-01T00:00:00Z)"
        )
    try:
        return parse_instant(text if "T" in text or " " in text else f"{text}T00:00:00Z")
    except ValueError:
        raise ConfigError(f"{name} '{text}' is not a valid date or instant") from None


@dataclass
class LiveRun:
    """A sync or record run in progress."""

    command: str
    settings: LiveSettings
    config: AppConfig
    ruleset: RuleSet
    options: RunOptions
    client: FhirClient = field(init=False)
    source: ServerSource = field(init=False)
    scan: ChangeScan = field(init=False)
    windows: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    scanned: Callable[[int], None] | None = None
    """Told how many patients the change scan found, before their data is fetched (progress)."""
    bulk: BulkSource | None = None
    """``--source bulk``: the export the run reads (its search source fetches contexts when incremental)."""
    _facts: LiveFacts = field(init=False)
    members: list[str] = field(default_factory=list)
    """patients mode: the population (Group members or the file's ids)."""
    spooled: set[str] = field(default_factory=set)
    """patients mode: patients an interrupted run of this job already read (kept in the state file)."""

    def __post_init__(self) -> None:
        self._facts = LiveFacts(_redact_url(self.settings.base_url))

    def connect(self) -> None:
        server = self.config.server
        auth = build_auth(server.auth, "server.auth")
        if auth is not None and not _is_protected(self.settings.base_url):
            log.warning("credentials will travel over plain HTTP to another machine (allow_insecure_http)")
        self.client = build_client(self.settings.base_url, server, auth)
        types = self.config.sync.resource_types or default_types(self.ruleset.relevant_codes())
        if self.settings.source == "patients":
            self._facts.source = "patients"
            patients = self.config.source.patients
            self.source = PatientSource(
                self.client,
                list(types),
                page_size=server.page_size,
                concurrency=patients.concurrency,
                everything=patients.everything,
            )
            if self.config.source.patients_file:  # a bad line refuses the run before any request
                self.members = read_patients_file(self.config.source.patients_file)
            return
        self.source = ServerSource(
            self.client,
            list(types),
            page_size=server.page_size,
            patient_batch=self.config.sync.patient_batch,
            scan_paging=self.config.sync.scan_paging,
        )
        if self.settings.source == "bulk":
            self.bulk = bulk_source(self.client, self.source, self.config, self.settings)
            self._facts.source = "bulk"

    def plan_windows(self, state: SyncState | None, job: str = "") -> datetime:
        """Fetch the CapabilityStatement, fix ``until`` and each type's window. Returns until."""
        capabilities = self.client.capabilities()
        self.source.plan(capabilities)
        self._facts.capability_gaps = dict(self.source.gaps)
        self._report_gaps(state, job)
        if not self.source.types:
            raise ConfigError("the server lists none of the resource types fhir-cat2 reads")
        patients = isinstance(self.source, PatientSource)
        resumed = self._interrupted(state, job) if patients and not self.settings.backfill else None
        if resumed is not None:
            self.members = self._population()
            until = parse_instant(resumed["until"])  # the interrupted run's: its patients were read up to it
        elif patients:
            # no search without a patient: the clock from a count search for one member (milliseconds),
            # else the Date header of the responses so far
            self.members = self._population()
            probe = [("_id", self.members[0])] if self.members else None
            until = (
                self.settings.until
                or self.client.server_time("Patient" if probe else None, probe)
                or datetime.now(UTC)
            )
        else:
            until = self.settings.until or self.client.server_time(self.source.types[0]) or datetime.now(UTC)
        local_now = datetime.now(UTC)
        if self.settings.until is None and until > local_now + timedelta(minutes=5):
            log.warning("the server's clock is ahead of ours by %s", until - local_now)
        # an export's _since is the last manifest's transactionTime, the server's own consistent point
        overlap = timedelta(0) if self.bulk else timedelta(minutes=self.config.sync.overlap_minutes)
        for resource_type in self.source.types:
            if self.settings.since is not None:
                since: datetime | None = self.settings.since
            elif self.settings.until is not None or state is None:
                since = None
            else:
                since = state.window(self.settings.base_url, resource_type, until, overlap, job).since
            self.windows[resource_type] = (format_instant(since) if since else None, format_until(until))
        self._facts.windows = dict(self.windows)
        if patients and state is not None:
            self._start_spool(state, job, resumed)
        return until

    # ------------------------------------------------------------------------------- patients mode

    def _spool_key(self, job: str) -> str:
        return f"patients_run {self.settings.base_url} {job}"

    def _interrupted(self, state: SyncState | None, job: str) -> dict[str, Any] | None:
        """The until and windows of an unfinished patients run of this job, if one left patients read."""
        text = state.noted(self._spool_key(job)) if state is not None else None
        return orjson.loads(text) if text else None

    def _start_spool(self, state: SyncState, job: str, resumed: dict[str, Any] | None) -> None:
        """Resume an unfinished run's spool when this run reads the same windows; else start a new one."""
        windows = {t: list(w) for t, w in sorted(self.windows.items())}
        if resumed is not None and resumed.get("windows") == windows:
            self.spooled = state.spooled_patients(self.settings.base_url, job)
            log.info("resuming an interrupted run: %d patients already read", len(self.spooled))
            return
        if resumed is not None:
            log.info("an interrupted run read other windows: its patients are read again")
        state.clear_spool(self.settings.base_url, job)
        until = next(iter(self.windows.values()))[1]
        state.note(self._spool_key(job), orjson.dumps({"until": until, "windows": windows}).decode())
        self.spooled = set()

    def finish_spool(self, state: SyncState, job: str, moved: bool) -> None:
        """The run completed: its spool is spent; when the watermarks moved, its members are the known ones
        (a member the next run does not find here is read whole)."""
        if not isinstance(self.source, PatientSource):
            return
        state.clear_spool(self.settings.base_url, job)
        state.note(self._spool_key(job), "")
        if moved:
            state.note(self._members_key(job), orjson.dumps(self.members).decode())

    def _members_key(self, job: str) -> str:
        return f"patients_members {self.settings.base_url} {job}"

    def _population(self) -> list[str]:
        population = self.config.source
        if population.patients_file:
            log.info("%d patients in %s", len(self.members), population.patients_file)
            return self.members  # read by connect
        group = self.settings.group or population.group
        if not group:
            raise ConfigError("patients mode needs --group ID (source.group) or source.patients_file")
        members = group_members(self.client, group)
        for why, n in sorted(members.skipped.items()):
            log.warning("Group %s: %d members left out (%s)", group, n, why)
        log.info("Group %s: %d patients in %d pages", group, len(members.patients), members.pages)
        return members.patients

    def _patient_inputs(self, state: SyncState | None, job: str) -> Iterator[InputItem | Rejected]:
        source = self.source
        assert isinstance(source, PatientSource)
        known: set[str] = set()
        if state is not None and not self.settings.backfill:
            known = set(orjson.loads(state.noted(self._members_key(job)) or "[]"))
        incremental = any(since for since, _ in self.windows.values())
        work = [
            (p, self.windows if incremental and p in known else None)
            for p in self.members
            if p not in self.spooled
        ]
        facts = {
            "members": len(self.members),
            "new": sum(1 for p in self.members if p not in known) if incremental else len(self.members),
            "resumed": sum(1 for p in self.members if p in self.spooled),
            "checked": sum(1 for _, w in work if w is not None),
            "fetched": 0,
        }
        self._facts.patients = facts
        log.info(
            "%d patients: %d read whole (new or first run), %d checked for changes, %d read by an"
            " interrupted run",
            facts["members"],
            sum(1 for _, w in work if w is None),
            facts["checked"],
            facts["resumed"],
        )
        self.scan = ChangeScan()
        if self.scanned is not None:
            self.scanned(len(self.members))
        where = f"{_redact_url(self.settings.base_url)} patient record"
        fetched = source.fetch_in_order(work)
        for patient_id in self.members:
            if patient_id in self.spooled:  # read by the interrupted run: from the state file, one at a time
                assert state is not None
                record = state.spooled_record(self.settings.base_url, job, patient_id)
                resources = None if record is None else [orjson.loads(x) for x in record.splitlines()]
            else:
                result = next(fetched)
                assert result.patient_id == patient_id
                self.scan.changed.update(result.changed)
                resources = result.resources
                if state is not None:  # read: a rerun after a kill does not fetch this patient again
                    record = None if resources is None else b"\n".join(orjson.dumps(r) for r in resources)
                    state.spool_patient(self.settings.base_url, job, patient_id, record)
                facts["fetched"] += resources is not None
            if resources is None:
                continue
            self.scan.patients.add(patient_id)
            yield from source.items(PatientFetch(patient_id, resources=resources), where)
        self._facts.changed_by_type = dict(sorted((t, n) for t, n in self.scan.changed.items() if n))
        self._facts.patients_affected = len(self.scan.patients)
        log.info("%d patients read whole", len(self.scan.patients))

    def _report_gaps(self, state: SyncState | None, job: str) -> None:
        """Capability gaps repeat on every run against the same server: warned about once, then INFO."""
        key = f"capability_gaps {self.settings.base_url} {job}"
        gaps = orjson.dumps(self.source.gaps).decode()
        report_gaps(self.source.gaps, state is not None and state.noted(key) == gaps)
        if state is not None:
            state.note(key, gaps)

    def inputs(self, state: SyncState | None = None, job: str = "") -> Iterator[InputItem | Rejected]:
        if self.bulk is not None:
            yield from self._bulk_inputs()
            return
        if isinstance(self.source, PatientSource):
            yield from self._patient_inputs(state, job)
            return
        self.scan = self.source.scan(self.windows)
        log.info(
            "%d patients affected by %d changed resources",
            len(self.scan.patients),
            sum(self.scan.changed.values()),
        )
        self._facts.changed_by_type = dict(sorted(self.scan.changed.items()))
        self._facts.patients_affected = len(self.scan.patients)
        if self.scanned is not None:
            self.scanned(len(self.scan.patients))
        yield from self.source.contexts(self.scan.patients)

    def _bulk_inputs(self) -> Iterator[InputItem | Rejected]:
        bulk = self.bulk
        assert bulk is not None
        self.scan = bulk.scan
        sinces = [since for since, _ in self.windows.values()]
        since = None if not sinces or None in sinces else min(s for s in sinces if s)
        yield from bulk.items(since)
        self._facts.changed_by_type = dict(sorted(self.scan.changed.items()))
        self._facts.patients_affected = len(self.scan.patients)
        job = bulk.job
        self._facts.bulk = {
            "level": bulk.level,
            "incremental": since is not None,
            "since": since,
            "resumed": bulk.resumed,
            "transaction_time": format_instant(bulk.transaction_time) if bulk.transaction_time else None,
            "files_done": len(job.files_done) if job else 0,
            "files_reused": bulk.files_reused,
            "deleted": dict(sorted(bulk.deleted.items())),
        }

    def facts(self) -> LiveFacts:
        """What this run learnt of the server, for the run report (kept up to date as the run goes)."""
        return self._facts


def job_key(settings: LiveSettings, ruleset: RuleSet, options: RunOptions) -> str:
    """What a sync job derives and where it writes, as a short digest: the key of its watermarks.

    Program, emit kinds, measures, report mode, an explicitly set period (an unset one follows the calendar
    and is the same job from year to year), the rules table with the codes its value sets resolve to (those a
    resource is kept by, by its code or by its value), the site ConceptMaps' mappings, and the write target.
    Two jobs on one server and state file each keep their own bookmarks; changing any of these starts a job
    afresh with a full read (write-back is idempotent: what is already there stays)."""
    relevant = {
        t: sorted(f"{s}|{c}" for s, c in codes) for t, codes in sorted(ruleset.relevant_codes().items())
    }
    identity = {
        "program": options.program,
        "emit": sorted(options.emit),
        "measures": sorted(options.measures) if options.measures is not None else None,
        "report": options.report,
        "period": options.period_year,
        "rules": hashlib.sha256(ruleset.table.model_dump_json().encode()).hexdigest(),
        "codes": hashlib.sha256(orjson.dumps(relevant)).hexdigest(),
        "write_to": (settings.write_to or settings.base_url).rstrip("/"),
    }
    by_value = {
        t: sorted(f"{s}|{c}" for s, c in codes) for t, codes in sorted(ruleset.value_screened_codes().items())
    }
    if by_value:  # resources kept by their value's code (CMS646's staging result): in no relevant-codes set
        identity["by_value"] = hashlib.sha256(orjson.dumps(by_value)).hexdigest()
    mapped = sorted(f"{s}|{c}>{ts}|{tc}" for (s, c), (ts, tc) in ruleset.concept_maps.targets())
    if mapped:  # visit types and diagnoses a map makes count are in no relevant-codes set (kept whole)
        identity["maps"] = hashlib.sha256(orjson.dumps(mapped)).hexdigest()
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def run_sync(
    settings: LiveSettings,
    config: AppConfig,
    ruleset: RuleSet,
    options: RunOptions,
    tracker: RunTracker | None = None,
) -> RunReport:
    """A sync run. Returns its report. With a tracker (the CLI), the run holds the state
    store's lock, is recorded there, and reports what it did even when it stops early."""
    job = job_key(settings, ruleset, options)  # before the period is defaulted: see job_key
    if options.period_year is None:
        today = (settings.until or datetime.now(UTC)).date()
        options = replace(options, period_year=today.year, period_defaulted_on=today)
    mode = "dry-run" if settings.dry_run else "backfill" if settings.backfill else "sync"
    if tracker is None:
        tracker = RunTracker("sync", [])
    tracker.out_dir = Path(settings.out)
    tracker.server = _redact_url(settings.base_url)
    state = tracker.state or tracker.hold(settings.state_path, mode)
    run = LiveRun("sync", settings, config, ruleset, options)
    run.run_id = tracker.run_id
    run.connect()
    run.source.observer = tracker.progress.page
    run.scanned = tracker.progress.scanned_patients
    if run.bulk is not None:
        run.bulk.state = state
        run.bulk.note_key = f"bulk_export {settings.base_url} {job}"
        run.bulk.cache_dir = Path(f"{settings.state_path}.bulk") / job
        run.bulk.on_phase = lambda name: tracker.progress.phase(name)
        run.bulk.exporter.on_progress = lambda text: tracker.progress.phase("export", label=text)
    facts = run.facts()
    facts.job, facts.dry_run, facts.backfill = job, settings.dry_run, settings.backfill
    tracker.attach(clients=[run.client], live=facts)
    report = tracker.report
    report.watermark_moved = False
    kinds = emitted_types(options.emit)
    write_client: FhirClient | None = None
    files = NdjsonSink(settings.out, kinds if settings.dry_run else ())
    sink: Sink = files
    try:
        before = state.watermarks(settings.base_url, job)
        report.watermark_before = watermark_text(before)
        until = run.plan_windows(state, job)
        state.update_run(
            run.run_id,
            server=tracker.server,
            since=min((s for s, _ in run.windows.values() if s), default=None),
            until=format_until(until),
        )
        log.info(
            "window up to %s for %d resource types (%s)",
            format_until(until),
            len(run.windows),
            "first run: everything" if not before and not settings.backfill else mode,
        )
        if not settings.dry_run:
            write_client = _write_client(settings, config, run.client)
            if write_client is not run.client:
                tracker.clients.append(write_client)
            server = server_sink(
                write_client, config, files, Outbox(state, write_client.base_url, job, run.run_id)
            )
            tracker.attach(sink=server)
            server.resend_pending()  # first: what earlier runs could not write
            sink = server
        pipeline = Pipeline(ruleset, options, sink, defaults=config.defaults.emit_defaults())
        pipeline.observer = tracker.progress.patient
        tracker.attach(stats=pipeline.stats)
        pipeline.ingest(tracker.progress.count(run.inputs(state, job)))
        if run.bulk is not None and run.bulk.transaction_time is not None:
            until = run.bulk.transaction_time  # the export's own point in time: the watermark to be
            state.update_run(run.run_id, until=format_until(until))
            for resource_type, (since_text, _) in run.windows.items():
                run.windows[resource_type] = (since_text, format_until(until))
            sink.expect(run.bulk.candidates)
        work = pipeline.job()
        report.job = work
        log.info("evaluating %d patients for measurement period %d", len(run.scan.patients), work.year)
        # a patient whose data is all gone from the server is evaluated nowhere: their reports are stale too
        sink.expect(key for patient_id in run.scan.patients for key in expected_reports(patient_id, work))
        stats = pipeline.run()
        tracker.progress.writing()
        sink.close()
        if sink is not files:
            files.close()
        elif "gaps" in options.emit:
            write_gaps_csv(settings.out)  # a dry run's Bundles are in the files: so is their gaps.csv
    except BaseException as exc:
        if run.bulk is not None and isinstance(exc, KeyboardInterrupt | Terminated):
            run.bulk.interrupted()
        files.abort()
        run.client.close()
        if write_client is not None and write_client is not run.client:
            write_client.close()
        raise
    if run.bulk is not None:
        run.bulk.finished()
        bulk_facts = run.facts().bulk
        if bulk_facts is not None:
            bulk_facts["seconds"] = run.bulk.timings(written=time.monotonic())
    written = sink.stats
    if not settings.dry_run:
        report.write_target = _redact_url(write_client.base_url if write_client else settings.base_url)
        done = written.to_json().items()
        log.info(
            "write-back: %s",
            "; ".join(f"{t} " + ", ".join(f"{n} {k}" for k, n in c.items()) for t, c in done)
            or "nothing to write",
        )
    write_csv(settings.out, stats.unrecognised_codes)
    unkept = written.failed  # neither on the server nor in the outbox: the watermark must not move
    moved = not settings.backfill and not settings.dry_run and not unkept
    if unkept:
        log.warning("%d writes are neither on the server nor in the outbox: watermarks kept", unkept)
    if moved:
        # Only now, with everything written or safely kept in the outbox, may the bookmarks move.
        state.commit_watermarks(settings.base_url, {t: until for t in run.source.types}, run.run_id, job)
        log.info("watermarks moved to %s", format_until(until))
    run.finish_spool(state, job, moved)
    report.watermark_after = watermark_text(state.watermarks(settings.base_url, job))
    report.watermark_moved = moved
    run.client.close()
    if write_client is not None and write_client is not run.client:
        write_client.close()
    return report


def bulk_source(
    client: FhirClient, search: ServerSource, config: AppConfig, settings: LiveSettings
) -> BulkSource:
    """The export source as configured (``source.bulk.*``), over the run's client and search source."""
    cfg = config.source.bulk
    group = settings.group
    level = cfg.level or ("group" if group else "system")
    if level == "group" and not group:
        raise ConfigError("source.bulk.level group needs a Group id (--group ID or source.group)")
    if settings.until is not None:
        raise ConfigError("--until cannot be used with --source bulk: an export ends at the server's now")
    exporter = BulkExport(
        client,
        poll=PollPolicy(first_wait=cfg.poll_seconds, max_wait=cfg.max_wait_minutes * 60.0),
        concurrency=cfg.concurrency,
        file_hosts=cfg.file_hosts,
    )
    return BulkSource(
        exporter,
        search,
        level=level,
        group=group if level == "group" else None,
        keep_export=settings.keep_export,
    )


def server_sink(write_client: FhirClient, config: AppConfig, files: NdjsonSink, outbox: Outbox) -> ServerSink:
    """The write-back sink as configured (``write.*``), on a write client, with its outbox."""
    writer = config.write
    bundle_type = writer.bundle_type
    if bundle_type == "transaction" and "transaction" not in server_interactions(write_client.capabilities()):
        log.warning("the write server does not list transaction; sending batch Bundles")
        bundle_type = "batch"
    return ServerSink(
        write_client,
        files,
        strategy=writer.strategy,
        bundle_size=writer.bundle_size,
        bundle_type=bundle_type,
        billing_claims=writer.billing_claims,
        withdraw_stale=writer.withdraw_stale,
        outbox=outbox,
    )


def run_outbox_retry(settings: LiveSettings, config: AppConfig, tracker: RunTracker) -> RunReport:
    """``fhir-cat2 outbox retry``: re-send the outbox of the write target now, as the next sync would first.
    Holds the state store's lock like a sync. Returns the run report."""
    tracker.out_dir = Path(settings.out)
    state = tracker.state or tracker.hold(settings.state_path, "outbox-retry")
    source = build_client(settings.base_url, config.server, build_auth(config.server.auth, "server.auth"))
    write_client = _write_client(settings, config, source)
    tracker.attach(clients=[write_client] if write_client is source else [write_client, source])
    target = write_client.base_url
    tracker.server = tracker.report.write_target = _redact_url(target)
    tracker.report.command = "outbox retry"
    files = NdjsonSink(settings.out, ())
    try:
        sink = server_sink(write_client, config, files, Outbox(state, target, "", tracker.run_id))
        tracker.attach(sink=sink)
        sink.resend_pending()
        files.close()
    except BaseException:
        files.abort()
        raise
    finally:
        source.close()
        if write_client is not source:
            write_client.close()
    elsewhere = sum(state.pending_counts().values()) - sink.stats.writes_pending
    if elsewhere:
        log.warning("%d pending writes for other write targets were not re-sent", elsewhere)
    return tracker.report


def _write_client(settings: LiveSettings, config: AppConfig, source: FhirClient) -> FhirClient:
    target = settings.write_to or config.write.base_url
    if not target or target.rstrip("/") == source.base_url:
        return source
    target = target.rstrip("/")
    if config.write.auth is not None:
        auth = build_auth(config.write.auth, "write.auth")
    elif origin(target) == source.origin:
        auth = build_auth(config.server.auth, "server.auth")
    else:
        # Credentials of the source never go to another origin unless configured for it.
        auth = None
        log.warning("writing to another server without credentials (set write.auth to authenticate there)")
    return build_client(target, config.server, auth, "--write-to" if settings.write_to else "write.base_url")


def run_record(
    settings: LiveSettings, config: AppConfig, ruleset: RuleSet, options: RunOptions
) -> dict[str, Any]:
    """Save the context pages a sync would feed the pipeline, as searchset Bundles replay can read."""
    out = Path(settings.out)
    ensure_private_dir(out)
    pages_dir = out / "pages"
    ensure_private_dir(pages_dir)
    counter = {"pages": 0}

    def save(phase: str, resource_type: str, page: SearchPage) -> None:
        if phase != "context":
            return
        counter["pages"] += 1
        name = f"{counter['pages']:06d}-{resource_type}.json"
        write_private(pages_dir / name, orjson.dumps(page.bundle, option=orjson.OPT_INDENT_2) + b"\n")

    settings = replace(settings, source="search")  # a recording is of search pages, which replay reads
    run = LiveRun("record", settings, config, ruleset, options)
    run.connect()
    run.source.observer = save
    try:
        run.plan_windows(None)  # a recording takes everything up to now (or --since/--until); no bookmarks
        resources = 0
        for item in run.inputs():
            if isinstance(item, InputItem):
                resources += 1
    finally:
        run.client.close()
    info = {
        "recorded_from": _redact_url(settings.base_url),
        "recorded_at": format_instant(datetime.now(UTC)),
        "window": {t: {"since": s, "until": u} for t, (s, u) in sorted(run.windows.items())},
        "patients": len(run.scan.patients),
        "pages": counter["pages"],
        "resources": resources,
        "replay_with": f"fhir-cat2 replay {out} --out DIR",
    }
    # YAML, not JSON: replay reads every *.json under the folder as FHIR input.
    import yaml

    write_private(out / "recording.yaml", yaml.safe_dump(info, sort_keys=False).encode())
    return info


def _is_protected(url: str) -> bool:
    """https, or plain http to this machine only."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")


def _redact_url(url: str) -> str:
    """A base URL for reports and logs: no user info, no query."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def summary(report: dict[str, Any]) -> str:
    written = report.get("write_back") or {}
    parts = []
    for resource_type in ("Claim", "MeasureReport", "Bundle"):
        counts = written.get(resource_type)
        if counts:
            shown = ", ".join(f"{n} {k}" for k, n in counts.items())
            parts.append(f"{resource_type}s: {shown}")
        elif report.get("written", {}).get(resource_type):
            parts.append(f"{report['written'][resource_type]} {resource_type}s")
    target = "dry run" if report.get("dry_run") else "written back"
    pending = report.get("writes_pending")
    outbox = f"; {pending} writes pending in the outbox" if pending else ""
    return (
        f"fhir-cat2 {report['command']}: {report.get('patients_affected', 0)} patients affected,"
        f" {report['resources_read']} resources read, {report['codes_emitted']} codes; {target}: "
        f"{'; '.join(parts) or 'nothing'}; {report['quarantined']} quarantined{outbox}; watermark"
        f" {'moved' if report.get('watermark_moved') else 'kept'}; in {report['duration_seconds']:.1f}s"
    )
