"""What happens around every run of ``replay``, ``sync`` and ``record``, whatever its outcome:

1. with a state store, take its lock (or stop at once with exit 5, naming the holder) and record the run as
   running; a run left "running" by a killed process is marked abandoned;
2. the command does its work, telling the tracker what it has (pipeline statistics, clients, sink) so that a
   run that fails or is interrupted still reports what it did;
3. at the end, always: the run report gets its status, exit code and error; it is written to
   ``run-report.json`` and to the state store; the lock is released; the metrics file is updated; and the
   one-line summary is printed, last, on stderr.

Statuses: completed (exit 0, 1 or 6), refused (2: configuration), failed (3, 4, 70), interrupted (130:
Ctrl-C, 143: SIGTERM), locked (5: another run held the lock), abandoned (killed; found by the next run),
running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from . import logs, metrics
from .errors import ConfigError
from .lock import RunLock, new_holder
from .progress import Progress
from .report import LiveFacts, RunReport
from .sinks.files import write_private
from .state import SyncState, format_instant, parse_instant

if TYPE_CHECKING:
    from .fhir import FhirClient
    from .sinks.base import Sink
    from .stats import RunStats

EXIT_OK = 0
EXIT_QUARANTINED = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_UNAVAILABLE = 4
EXIT_LOCKED = 5
EXIT_WRITES_PENDING = 6
EXIT_EXPORT_TIMEOUT = 7
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EXIT_MEANINGS = {
    EXIT_OK: "success",
    EXIT_QUARANTINED: "completed with quarantined items",
    EXIT_CONFIG: "usage or configuration error",
    EXIT_AUTH: "authentication refused",
    EXIT_UNAVAILABLE: "server unavailable after the retry budget",
    EXIT_LOCKED: "another run holds the lock",
    EXIT_WRITES_PENDING: "completed; writes pending in the outbox",
    EXIT_EXPORT_TIMEOUT: "bulk export still running after the wait limit (the next run resumes it)",
    EXIT_INTERNAL: "internal error",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_TERMINATED: "terminated (SIGTERM)",
}
DEFAULT_KEEP_RUNS = 1000


def status_for(exit_code: int) -> str:
    if exit_code in (EXIT_OK, EXIT_QUARANTINED, EXIT_WRITES_PENDING):
        return "completed"
    return {
        EXIT_CONFIG: "refused",
        EXIT_LOCKED: "locked",
        EXIT_INTERRUPTED: "interrupted",
        EXIT_TERMINATED: "interrupted",
    }.get(exit_code, "failed")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler stopping the job): cleaned up like Ctrl-C, but exits 143 (128 + SIGTERM), as a
    process killed by SIGTERM would be reported, so a scheduler can tell its own stop from a person's."""


def invocation(argv: list[str]) -> str:
    """The command line for a run record and the lock file: URLs without user info or query."""
    return logs.redact(" ".join(["fhir-cat2", *argv]))


@dataclass
class RunTracker:
    command: str
    argv: list[str]
    metrics_path: Path | None = None
    progress: Progress = field(default_factory=lambda: Progress("", False))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: str = field(default_factory=lambda: format_instant(datetime.now(UTC)))
    started: float = field(default_factory=time.monotonic)
    keep_runs: int = DEFAULT_KEEP_RUNS

    out_dir: Path | None = None
    state: SyncState | None = None
    lock: RunLock | None = None
    mode: str | None = None
    server: str | None = None
    report: RunReport = field(init=False)
    """The run's report, filled in by the command as it goes (a run that stops early reports what it had)."""
    summarise: Callable[[dict[str, Any]], str] | None = None
    """The command's own one-line summary of a completed run, made from its report's JSON."""
    clients: list[FhirClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        logs.set_run_id(self.run_id)
        self.report = RunReport(self.command, run_id=self.run_id, started_at=self.started_at)

    # ---------------------------------------------------------------------------------- during the run

    def hold(self, state_path: str, mode: str) -> SyncState:
        """Take the state store's lock and record the run; exit 5 (LockHeldError) when another run has it."""
        self.mode = mode
        lock = RunLock(state_path, new_holder(self.run_id, invocation(self.argv)))
        try:
            lock.acquire()
        except Exception:
            self._record_locked(state_path)
            raise
        self.lock = lock
        try:
            self.state = SyncState(state_path)
            for row in self.state.abandon_running():
                logs_warning(
                    "run %s (pid %s on %s, started %s) ended without releasing the lock (killed?);"
                    " marked abandoned",
                    str(row["id"])[:12],
                    row["pid"],
                    row["host"],
                    row["started_at"],
                )
            if lock.previous is not None and lock.previous.run_id:
                logs_info("took over the lock left by %s", lock.previous.describe())
            self.state.start_run(
                self.run_id,
                self.command,
                self.server,
                None,
                None,
                mode=mode,
                pid=os.getpid(),
                host=lock.holder.host,
                invocation=lock.holder.command,
                started_at=self.started_at,
            )
        except BaseException:
            self._release()
            raise
        logs_info("run %s started: %s (%s), state %s", self.run_id, self.command, mode, state_path)
        return self.state

    def _record_locked(self, state_path: str) -> None:
        """A refused concurrent run is still a run: it shows in ``fhir-cat2 runs`` as locked."""
        try:
            state = SyncState(state_path, create=False)
        except ConfigError:
            return
        try:
            state.start_run(
                self.run_id,
                self.command,
                None,
                None,
                None,
                status="locked",
                mode=self.mode,
                pid=os.getpid(),
                host=os.uname().nodename if hasattr(os, "uname") else None,
                invocation=invocation(self.argv),
                started_at=self.started_at,
            )
            state.finish_run(
                self.run_id, "locked", None, exit_code=EXIT_LOCKED, summary="another run held the lock"
            )
        finally:
            state.close()

    def attach(
        self,
        *,
        stats: RunStats | None = None,
        clients: list[FhirClient] | None = None,
        sink: Sink | None = None,
        live: LiveFacts | None = None,
    ) -> None:
        """What the run has, as it gets it (a failed run still reports from it): the pipeline's statistics,
        the FHIR clients (requests, retries), the write-back sink, the live server's facts."""
        if stats is not None:
            self.report.stats = stats
            self.progress.stats = stats
        if clients is not None:
            self.clients = clients
        if sink is not None:
            self.report.sink = sink.stats
            sink.stats.observer = self.progress.wrote
        if live is not None:
            self.report.live = live

    # ---------------------------------------------------------------------------------- at the end

    def finish(self, exit_code: int, error: str | None) -> None:
        """Always called, once: report, state, lock, metrics, summary (last on stderr)."""
        previous = _ignore_interrupts()
        try:
            self.progress.close()
            duration = round(time.monotonic() - self.started, 3)
            status = status_for(exit_code)
            report = self._final_report(exit_code, status, error, duration)
            summary = (
                self.summarise(report)
                if status == "completed" and self.summarise is not None
                else self._failure_summary(exit_code, report)
            )
            if self.out_dir is not None and status != "locked":  # the holder owns the folder
                try:
                    write_private(
                        self.out_dir / "run-report.json",
                        orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n",
                    )
                except OSError as exc:
                    logs_warning("cannot write run-report.json in %s: %s", self.out_dir, exc.strerror)
            if self.state is not None:
                try:
                    self.state.finish_run(
                        self.run_id,
                        status,
                        orjson.dumps(report).decode(),
                        exit_code=exit_code,
                        summary=summary,
                    )
                    self.state.prune_runs(self.keep_runs)
                except Exception as exc:  # the outcome is already decided; never mask it
                    logs_warning("cannot record the run in the state store: %s", type(exc).__name__)
            self._release()
            if self.metrics_path is not None:
                try:
                    metrics.update(self.metrics_path, self._metrics(report, exit_code, duration))
                except OSError as exc:
                    logs_warning("cannot write the metrics file %s: %s", self.metrics_path, exc.strerror)
            logs.console(
                summary,
                event="summary",
                level="INFO" if exit_code == EXIT_OK else "WARNING" if status == "completed" else "ERROR",
                **summary_fields(report),
            )
        finally:
            _restore_interrupts(previous)
            logs.set_run_id(None)

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.state is not None:
            state, self.state = self.state, None
            with contextlib.suppress(Exception):
                state.close()

    def _final_report(
        self, exit_code: int, status: str, error: str | None, duration: float
    ) -> dict[str, Any]:
        report = self.report
        report.status = status
        report.exit_code = exit_code
        report.exit_meaning = EXIT_MEANINGS.get(exit_code, "unknown")
        report.finished_at = format_instant(datetime.now(UTC))
        report.mode = self.mode
        report.error = logs.redact(error) if error else None
        report.duration_seconds = duration
        if self.clients:
            report.requests = sum(c.requests_sent for c in self.clients)
            report.retries = sum(c.retries for c in self.clients)
        return report.to_json()

    def _failure_summary(self, exit_code: int, report: dict[str, Any]) -> str:
        meaning = EXIT_MEANINGS.get(exit_code, "error")
        status = status_for(exit_code)
        head = f"fhir-cat2 {self.command}: {status} (exit {exit_code}: {meaning})"
        if status in ("refused", "locked"):
            return f"{head}; nothing was done"
        parts = [
            f"{report.get('resources_read', 0)} resources read",
            f"{report.get('codes_emitted', 0)} codes",
            f"{report.get('quarantined', 0)} quarantined",
        ]
        if "patients_affected" in report:
            parts.insert(0, f"{report['patients_affected']} patients affected")
        if "retries" in report:
            parts.append(f"{report['retries']} retries")
        written = report.get("write_back")
        if written:
            shown = "; ".join(
                f"{t}s: " + ", ".join(f"{n} {k}" for k, n in counts.items()) for t, counts in written.items()
            )
            parts.append(f"written back before stopping: {shown}")
        if report.get("writes_pending"):
            parts.append(f"{report['writes_pending']} writes pending in the outbox")
        if self.command == "sync":
            parts.append("watermark kept")
        return f"{head}; {', '.join(parts)}; after {report.get('duration_seconds', 0):.1f}s"

    def _metrics(self, report: dict[str, Any], exit_code: int, duration: float) -> metrics.RunMetrics:
        written: dict[tuple[str, str], int] = {}
        if report.get("write_back"):
            for resource_type, counts in report["write_back"].items():
                for outcome, n in counts.items():
                    written[(resource_type, outcome)] = n
        else:
            for resource_type, n in (report.get("written") or {}).items():
                written[(resource_type, "file")] = n
        watermarks = {}
        for resource_type, stamp in ((report.get("watermark") or {}).get("after") or {}).items():
            if stamp:
                watermarks[resource_type] = parse_instant(stamp).timestamp()
        return metrics.RunMetrics(
            command=self.command,
            exit_code=exit_code,
            duration=duration,
            resources_read=dict(report.get("resources_read_by_type") or {}),
            codes=dict(report.get("codes") or {}),
            quarantined=dict(report.get("quarantine_reasons") or {}),
            written=written,
            retries=int(report.get("retries") or 0),
            watermarks=watermarks,
            writes_pending=(
                dict(report.get("writes_pending_by_type") or {}) if "writes_pending" in report else None
            ),
        )


SUMMARY_FIELDS = (
    "command",
    "status",
    "exit_code",
    "exit_meaning",
    "mode",
    "error",
    "patients",
    "patients_affected",
    "files_read",
    "files_unreadable",
    "resources_read",
    "codes_emitted",
    "written",
    "write_back",
    "writes_pending",
    "quarantined",
    "capability_gaps",
    "retries",
    "watermark_moved",
    "duration_seconds",
)
"""What the summary record carries in ``--log-format json``: the one-line summary's facts, as fields."""


def summary_fields(report: dict[str, Any]) -> dict[str, Any]:
    return {name: report[name] for name in SUMMARY_FIELDS if name in report}


def _ignore_interrupts() -> Any:
    """The cleanup of a run must run to its end, even when Ctrl-C is pressed again or SIGTERM comes."""
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return None


def _restore_interrupts(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def logs_info(message: str, *args: object) -> None:
    import logging

    logging.getLogger("fhir_cat2.runs").info(message, *args)


def logs_warning(message: str, *args: object) -> None:
    import logging

    logging.getLogger("fhir_cat2.runs").warning(message, *args)


def watermark_text(marks: dict[str, datetime]) -> dict[str, str]:
    return {t: format_instant(m) for t, m in sorted(marks.items())}
