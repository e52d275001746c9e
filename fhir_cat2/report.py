"""The run report: what a run read, emitted, quarantined, and how long it took."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from . import __version__
from .codes import report_section
from .conceptmaps import ConceptMaps
from .emit.claim import EmitDefaults
from .pipeline import RunOptions, RunStats


def build_run_report(
    command: str,
    stats: RunStats,
    options: RunOptions,
    period: tuple[date, date],
    defaults: EmitDefaults,
    *,
    rules_source: str,
    extra: dict[str, Any] | None = None,
    maps: ConceptMaps | None = None,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "tool": "fhir-cat2",
        "version": __version__,
        "command": command,
        "period": {"start": period[0].isoformat(), "end": period[1].isoformat()},
        "program": options.program,
        "emit": sorted(options.emit),
        "rules": rules_source,
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
        "defaults_used": {
            name: {"count": count, "from": "configuration" if name in defaults.configured else "built-in"}
            for name, count in sorted(defaults.used.items())
        },
        "concept_maps": {
            "loaded": [loaded.to_json() for loaded in (maps.maps if maps is not None else [])],
            "used": [
                {
                    "resource_type": resource_type,
                    "map": label,
                    "source": source,
                    "target": target,
                    "count": count,
                }
                for (resource_type, label, source, target), count in sorted(stats.mapped.items())
            ],
        },
        "unrecognised_codes": report_section(stats.unrecognised_codes),
        "warnings": list(stats.warnings),
        "duration_seconds": round(time.monotonic() - stats.started, 3),
    }
    if extra:
        report.update(extra)
    return report


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
