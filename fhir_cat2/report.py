"""The run report: what a run read, emitted, wrote back, quarantined, and how it ended.

One typed ``RunReport`` per run, held by the run's tracker from its start and filled in as the run goes:
the statistics once the pipeline exists, the job once the period is known, the sink's counts, the live
server's facts. A run that stops early reports what it had: the same object, fewer parts. ``to_json`` is the
one place the report's JSON (``run-report.json``, the state store's run record) is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .codes import report_section
from .emit.measurereport import ATTRIBUTION_PREFIX
from .job import Job
from .sinks.base import SinkStats
from .stats import RunStats


@dataclass
class LiveFacts:
    """What a sync learnt about the server it read (no patient data)."""

    server: str
    windows: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    changed_by_type: dict[str, int] = field(default_factory=dict)
    patients_affected: int = 0
    capability_gaps: dict[str, str] = field(default_factory=dict)
    job: str | None = None
    dry_run: bool = False
    backfill: bool = False
    source: str = "search"
    bulk: dict[str, Any] | None = None
    """``--source bulk``: level, resumed, incremental, transaction time, files, deleted per type."""
    patients: dict[str, int] | None = None
    """patients mode: members, new, checked, fetched, resumed (counts only: ids are never reported)."""


@dataclass
class RunReport:
    command: str
    run_id: str = ""
    started_at: str = ""
    mode: str | None = None
    stats: RunStats | None = None
    job: Job | None = None
    sink: SinkStats | None = None
    """The write-back's counts (a server sink); None when the run writes files only."""
    write_target: str | None = None
    live: LiveFacts | None = None
    requests: int | None = None
    retries: int | None = None
    watermark_before: dict[str, str] | None = None
    watermark_after: dict[str, str] | None = None
    watermark_moved: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Facts of commands that evaluate nothing (``record``)."""
    # how the run ended (set by the tracker)
    status: str | None = None
    exit_code: int | None = None
    exit_meaning: str | None = None
    finished_at: str | None = None
    duration_seconds: float = 0.0
    error: str | None = None

    @property
    def quarantined(self) -> int:
        failed = self.sink.failed if self.sink is not None else 0
        return (self.stats.quarantined if self.stats is not None else 0) + failed

    @property
    def writes_pending(self) -> int:
        return self.sink.writes_pending if self.sink is not None else 0

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {"tool": "fhir-cat2", "version": __version__, "command": self.command}
        job = self.job
        if job is not None:
            period = job.period
            report["period"] = {"start": period[0].isoformat(), "end": period[1].isoformat()}
            report["program"] = job.options.program
            report["emit"] = sorted(job.options.emit)
            report["deviations"] = sorted(job.options.deviations)  # from the published measure logic
            report["rules"] = job.ruleset.source
        stats = self.stats
        if stats is not None:
            report.update(_stats_json(stats))
            if job is not None:
                report["defaults_used"] = {
                    name: {
                        "count": count,
                        "from": "configuration" if name in job.defaults.configured else "built-in",
                    }
                    for name, count in sorted(stats.defaults_used.items())
                }
                maps = job.ruleset.concept_maps
                report["concept_maps"] = {
                    "loaded": [loaded.to_json() for loaded in maps.maps],
                    "used": [
                        {"resource_type": t, "map": label, "source": source, "target": target, "count": count}
                        for (t, label, source, target), count in sorted(stats.mapped.items())
                    ],
                }
                report["unrecognised_codes"] = report_section(stats.unrecognised_codes)
                report["warnings"] = list(stats.warnings)
        if self.sink is not None:
            written = self.sink.to_json()
            report["write_back"] = written
            report["unchanged"] = {t: c["unchanged"] for t, c in written.items() if c.get("unchanged")}
            report["writes_pending"] = self.writes_pending
            report["writes_pending_by_type"] = dict(sorted(self.sink.pending_by_type.items()))
            report["outbox_resent"] = self.sink.resent
            if self.sink.failed:
                report.setdefault("quarantine_reasons", {})["write-back"] = self.sink.failed
        if self.write_target is not None:
            report["write_target"] = self.write_target
        if stats is not None or self.sink is not None:
            report["quarantined"] = self.quarantined
        live = self.live
        if live is not None:
            report["server"] = live.server
            report["window"] = {t: {"since": s, "until": u} for t, (s, u) in sorted(live.windows.items())}
            report["changed_by_type"] = dict(sorted(live.changed_by_type.items()))
            report["patients_affected"] = live.patients_affected
            report["capability_gaps"] = dict(live.capability_gaps)
            if live.job is not None:
                report["job"] = live.job
            report["dry_run"] = live.dry_run
            report["backfill"] = live.backfill
            report["source"] = live.source
            if live.bulk is not None:
                report["bulk_export"] = live.bulk
            if live.patients is not None:
                report["patient_reads"] = dict(live.patients)
        if self.requests is not None:
            report["requests"] = self.requests
            report["retries"] = self.retries or 0
        report.update(self.extra)
        if self.watermark_moved is not None or self.watermark_before is not None:
            report["watermark_moved"] = bool(self.watermark_moved)
        if self.watermark_before is not None:
            after = self.watermark_after if self.watermark_after is not None else self.watermark_before
            report["watermark"] = {"before": self.watermark_before, "after": after}
        report["run_id"] = self.run_id
        if self.status is not None:
            report["status"] = self.status
            report["exit_code"] = self.exit_code
            report["exit_meaning"] = self.exit_meaning
        report["started_at"] = self.started_at
        if self.finished_at is not None:
            report["finished_at"] = self.finished_at
        if self.mode is not None:
            report["mode"] = self.mode
        if self.error:
            report["error"] = self.error
        report["duration_seconds"] = self.duration_seconds
        return report


def _stats_json(stats: RunStats) -> dict[str, Any]:
    return {
        "files_read": stats.files,
        "files_unreadable": stats.files_unreadable,
        "resources_read": sum(stats.resources_read.values()),
        "resources_read_by_type": dict(sorted(stats.resources_read.items())),
        "resources_used_by_type": dict(sorted(stats.resources_used.items())),
        "patients": stats.patients,
        "codes_emitted": sum(stats.codes.values()),
        "codes": dict(sorted(stats.codes.items())),
        "written": dict(sorted(stats.written.items())),
        "measure_populations": {
            measure: dict(sorted(counts.items())) for measure, counts in sorted(stats.populations.items())
        },
        "quarantined": stats.quarantined,
        "quarantine_reasons": dict(sorted(stats.quarantine_reasons.items())),
        "measure_attribution": attribution_json(stats.tallies),
    }


def attribution_json(
    tallies: dict[str, tuple[list[dict[str, int]], int]],
) -> dict[str, list[dict[str, dict[str, dict[str, int]]]]]:
    """Per measure and group (in the Measure's order): population counts per clinician, organization and
    location the patients were attributed to (``core.attribute``). Aggregates, no patient data."""
    out: dict[str, list[dict[str, dict[str, dict[str, int]]]]] = {}
    for measure_id, (groups, _patients) in sorted(tallies.items()):
        per_group = []
        for counts in groups:
            dimensions: dict[str, dict[str, dict[str, int]]] = {}
            for key, count in counts.items():
                if not key.startswith(ATTRIBUTION_PREFIX):
                    continue
                head, _, code = key.rpartition("|")
                name, _, ref = head[len(ATTRIBUTION_PREFIX) :].partition("=")
                dimensions.setdefault(name, {}).setdefault(ref, {})[code] = count
            per_group.append(
                {
                    name: {ref: dict(sorted(c.items())) for ref, c in sorted(refs.items())}
                    for name, refs in sorted(dimensions.items())
                }
            )
        if any(per_group):
            out[measure_id] = per_group
    return out


def summary_line(command: str, report: dict[str, Any]) -> str:
    written = report.get("written", {})
    return (
        f"fhir-cat2 {command}: {report['patients']} patients, {report['resources_read']} resources read,"
        f" {report['codes_emitted']} codes, {written.get('Claim', 0)} Claims,"
        f" {written.get('MeasureReport', 0)} MeasureReports, {report['quarantined']} quarantined"
        f"{_unreadable(report)} in {report['duration_seconds']:.1f}s"
    )


def _unreadable(report: dict[str, Any]) -> str:
    count = report.get("files_unreadable") or 0
    return f" ({count} unreadable input file{'s' if count != 1 else ''}, named in the log)" if count else ""
