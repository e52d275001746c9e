"""Sync state in an embedded SQLite file: per server, job and resource type, the watermark of the last
successful run.

A *job* is what a run derives from the server's data: program, emit kinds, measures, report mode, an
explicitly configured period, the rules table and value sets, and where it writes (``sync.job_key``). Each
job has watermarks of its own: a second job on the same server and state file (say mips-claims beside
hedis), or a job whose rules changed, starts with a full read instead of inheriting another job's
bookmarks and never seeing the patients that changed before it existed.

Bookmarks that cannot lie:

* a watermark is the ``until`` bound a completed run searched up to, and ``until`` is never later than the
  run's start (the server's clock from its Date header when it sends one, else ours);
* watermarks move only when a run completes (``commit_watermarks`` after the write-back), all types in one
  transaction; a run that stops early (server down, killed) leaves them where they were;
* the next run searches from ``watermark - overlap`` so a resource committed on the server a little after
  it was stamped is still seen; what is seen twice is de-duplicated by id downstream;
* a backfill (``--since/--until``) reads and writes but never touches them.

It also holds a record of every run (``fhir-cat2 runs``): its status, exit code and report; and the
*outbox* (``fhir-cat2 outbox``): the writes a write target refused or could not take, one row per (write
target, resource type, business key), holding what the server should hold (the desired resource, or the
withdrawal of that key) and why it is not there yet. The next run re-sends them first. The file (and
SQLite's -wal, -shm and -journal files beside it) is created readable by its owner only: outbox rows hold
clinical content and the server's diagnostics.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError

SCHEMA_VERSION = 4

_WATERMARK_TABLE = """
CREATE TABLE IF NOT EXISTS watermark (
    server TEXT NOT NULL,
    job TEXT NOT NULL DEFAULT '',      -- sync.job_key of the run's settings ('' before schema 3)
    resource_type TEXT NOT NULL,
    high_water TEXT NOT NULL,          -- ISO instant, UTC, ms: the 'until' of the last completed run
    run_id TEXT,
    updated_at TEXT NOT NULL,          -- local clock, for people
    PRIMARY KEY (server, job, resource_type)
);
"""

# Schema 4: writes not yet on the write target (created by _SCHEMA's IF NOT EXISTS in older files).
_OUTBOX_TABLE = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,              -- write target base URL
    resource_type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    resource TEXT,                     -- desired resource JSON; NULL: withdraw what we wrote for the key
    encounter TEXT,                    -- billing_claims append: the encounter of the billing Claim
    job TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,              -- issue codes / HTTP status wording: safe to show
    detail TEXT,                       -- the server's diagnostics: may quote data, never logged
    attempts INTEGER NOT NULL DEFAULT 1,
    first_failed_at TEXT NOT NULL,
    last_failed_at TEXT NOT NULL,
    run_id TEXT,
    UNIQUE (target, resource_type, business_key)
);
"""

# patients mode: the patients an unfinished run has read, so a rerun does not fetch them again. An extra
# table: older fhir-cat2 versions, which never read it, open the file as before (no schema version bump).
_PATIENT_SPOOL_TABLE = """
CREATE TABLE IF NOT EXISTS patient_spool (
    server TEXT NOT NULL,
    job TEXT NOT NULL,
    patient TEXT NOT NULL,
    record BLOB,                       -- the patient's resources as NDJSON; NULL: nothing changed
    PRIMARY KEY (server, job, patient)
);
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{watermark}
CREATE TABLE IF NOT EXISTS run (
    id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    server TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,              -- running | completed | failed
    since TEXT,
    until TEXT,
    report TEXT                        -- run-report JSON
);
CREATE INDEX IF NOT EXISTS run_started ON run (started_at);
CREATE TABLE IF NOT EXISTS lock (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
{outbox}
""".replace("{watermark}", _WATERMARK_TABLE.strip())
_SCHEMA = _SCHEMA.replace("{outbox}", _OUTBOX_TABLE.strip()) + _PATIENT_SPOOL_TABLE


def format_instant(when: datetime) -> str:
    """FHIR instant in UTC with milliseconds: the form servers compare correctly in _lastUpdated."""
    return (
        when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{when.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def format_until(when: datetime) -> str:
    """The upper search bound. A whole-second instant (a server's Date header) is sent with second precision:
    ``le`` then covers that whole second, as FHIR defines for a value's implicit range, so nothing the server
    stamped within the second is missed; the watermark itself stays at the second's start."""
    if when.microsecond == 0:
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return format_instant(when)


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """What one resource type is searched for: ``_lastUpdated`` in (since, until]."""

    since: datetime | None
    until: datetime


# Columns added to ``run`` in schema 2 (run records for operators).
_RUN_COLUMNS_V2 = {
    "mode": "TEXT",  # sync | backfill | dry-run | replay
    "pid": "INTEGER",
    "host": "TEXT",
    "invocation": "TEXT",  # the command line, URLs redacted
    "exit_code": "INTEGER",
    "summary": "TEXT",  # the one-line summary printed last on stderr
}
RUN_STATUSES = ("running", "completed", "failed", "interrupted", "abandoned", "locked", "refused")


def create_private(path: Path) -> None:
    """Create ``path`` owner-only before SQLite opens it (no window in which another user could open it);
    SQLite gives its -wal, -shm and -journal files the database file's permissions."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


class SyncState:
    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        try:
            if not create and not self.path.exists():
                raise ConfigError(f"no state file at {self.path} (give --state PATH or --config FILE)")
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, mode=0o700)
            if not self.path.exists():
                create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise ConfigError(f"state file {self.path} is from a newer fhir-cat2 (schema {row[0]})")
            self._migrate()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open state file {self.path}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot create state file {self.path}: {exc.strerror}") from None

    def _migrate(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(run)")}
        watermark_columns = {row[1] for row in self._db.execute("PRAGMA table_info(watermark)")}
        with _transaction(self._db):
            if "job" not in watermark_columns:
                # schema 2 -> 3: watermarks gain a job; the old ones keep job '' (no job of ours reads them,
                # so the first run of each job after the upgrade reads everything, then goes incremental)
                self._db.execute("ALTER TABLE watermark RENAME TO watermark_v2")
                self._db.execute(_WATERMARK_TABLE)
                self._db.execute(
                    "INSERT INTO watermark (server, job, resource_type, high_water, run_id, updated_at)"
                    " SELECT server, '', resource_type, high_water, run_id, updated_at FROM watermark_v2"
                )
                self._db.execute("DROP TABLE watermark_v2")
            for column, kind in _RUN_COLUMNS_V2.items():
                if column not in present:
                    self._db.execute(f"ALTER TABLE run ADD COLUMN {column} {kind}")
            self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def watermark(self, server: str, resource_type: str, job: str = "") -> datetime | None:
        row = self._db.execute(
            "SELECT high_water FROM watermark WHERE server=? AND job=? AND resource_type=?",
            (server, job, resource_type),
        ).fetchone()
        return parse_instant(row[0]) if row else None

    def watermarks(self, server: str, job: str | None = "") -> dict[str, datetime]:
        """The watermarks of one job on ``server``; ``job=None``: the latest of every job's, per type."""
        if job is None:
            rows = self._db.execute(
                "SELECT resource_type, MAX(high_water) FROM watermark WHERE server=? GROUP BY resource_type",
                (server,),
            )
        else:
            rows = self._db.execute(
                "SELECT resource_type, high_water FROM watermark WHERE server=? AND job=?", (server, job)
            )
        return {resource_type: parse_instant(value) for resource_type, value in rows}

    def window(
        self, server: str, resource_type: str, until: datetime, overlap: timedelta, job: str = ""
    ) -> Window:
        mark = self.watermark(server, resource_type, job)
        return Window(None if mark is None else mark - overlap, until)

    def commit_watermarks(
        self, server: str, marks: dict[str, datetime], run_id: str | None = None, job: str = ""
    ) -> None:
        """Move the watermarks of a completed run, all at once; never backwards."""
        now = format_instant(datetime.now(UTC))
        with _transaction(self._db):
            for resource_type, mark in marks.items():
                current = self.watermark(server, resource_type, job)
                if current is not None and current >= mark:
                    continue
                self._db.execute(
                    "INSERT INTO watermark (server, job, resource_type, high_water, run_id, updated_at)"
                    " VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT (server, job, resource_type) DO UPDATE SET high_water=excluded.high_water,"
                    " run_id=excluded.run_id, updated_at=excluded.updated_at",
                    (server, job, resource_type, format_instant(mark), run_id, now),
                )

    def start_run(
        self,
        run_id: str,
        command: str,
        server: str | None,
        since: str | None,
        until: str | None,
        *,
        status: str = "running",
        mode: str | None = None,
        pid: int | None = None,
        host: str | None = None,
        invocation: str | None = None,
        started_at: str | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO run (id, command, server, started_at, status, since, until, mode, pid, host,"
            " invocation) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                command,
                server,
                started_at or format_instant(datetime.now(UTC)),
                status,
                since,
                until,
                mode,
                pid,
                host,
                invocation,
            ),
        )

    def update_run(self, run_id: str, **values: str | int | None) -> None:
        """Set columns of a run record (server, since, until, mode...) as a run learns them."""
        allowed = {"server", "since", "until", "mode"}
        columns = [c for c in values if c in allowed]
        if columns:
            self._db.execute(
                f"UPDATE run SET {', '.join(f'{c}=?' for c in columns)} WHERE id=?",
                (*(values[c] for c in columns), run_id),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        report: str | None = None,
        *,
        exit_code: int | None = None,
        summary: str | None = None,
    ) -> None:
        self._db.execute(
            "UPDATE run SET finished_at=?, status=?, report=?, exit_code=?, summary=? WHERE id=?",
            (format_instant(datetime.now(UTC)), status, report, exit_code, summary, run_id),
        )

    def abandon_running(self) -> list[dict[str, object]]:
        """Runs recorded as running when this process holds the lock were killed: mark them abandoned."""
        rows = self.runs(status="running")
        if rows:
            self._db.execute(
                "UPDATE run SET status='abandoned', finished_at=? WHERE status='running'",
                (format_instant(datetime.now(UTC)),),
            )
        return rows

    def runs(self, limit: int | None = None, status: str | None = None) -> list[dict[str, object]]:
        """Run records, newest first."""
        query = (
            "SELECT id, command, mode, server, started_at, finished_at, status, exit_code, since, until,"
            " pid, host, invocation, summary, report FROM run"
        )
        params: list[object] = []
        if status is not None:
            query += " WHERE status=?"
            params.append(status)
        query += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        cursor = self._db.execute(query, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def run(self, id_prefix: str) -> dict[str, object]:
        """One run by id, a unique prefix of it, or 'last'."""
        if id_prefix == "last":
            rows = self.runs(limit=1)
        else:
            rows = [r for r in self.runs() if str(r["id"]).startswith(id_prefix)]
        if not rows:
            raise ConfigError(f"no run '{id_prefix}' in {self.path}")
        if len(rows) > 1:
            raise ConfigError(f"'{id_prefix}' matches {len(rows)} runs; give more of the id")
        return rows[0]

    def noted(self, key: str) -> str | None:
        """A small fact a run leaves for the next one (e.g. the capability gaps already warned about)."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", ("note:" + key,)).fetchone()
        return None if row is None else str(row[0])

    def note(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("note:" + key, value))

    def forget_note(self, key: str) -> None:
        self._db.execute("DELETE FROM meta WHERE key=?", ("note:" + key,))

    def spooled_patients(self, server: str, job: str) -> set[str]:
        """patients mode: the patients an unfinished run of this job has read."""
        rows = self._db.execute("SELECT patient FROM patient_spool WHERE server=? AND job=?", (server, job))
        return {str(patient) for (patient,) in rows}

    def spooled_record(self, server: str, job: str, patient: str) -> bytes | None:
        """What an unfinished run read of a patient (NDJSON); None: nothing had changed (or not read)."""
        row = self._db.execute(
            "SELECT record FROM patient_spool WHERE server=? AND job=? AND patient=?", (server, job, patient)
        ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def spool_patient(self, server: str, job: str, patient: str, record: bytes | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO patient_spool VALUES (?, ?, ?, ?)", (server, job, patient, record)
        )

    def clear_spool(self, server: str, job: str) -> None:
        self._db.execute("DELETE FROM patient_spool WHERE server=? AND job=?", (server, job))

    def prune_runs(self, keep: int) -> int:
        """Keep the newest ``keep`` run records (reports add up over years of runs every few minutes)."""
        cursor = self._db.execute(
            "DELETE FROM run WHERE status != 'running' AND id NOT IN"
            " (SELECT id FROM run ORDER BY started_at DESC, rowid DESC LIMIT ?)",
            (keep,),
        )
        return cursor.rowcount

    # ------------------------------------------------------------------------------------------ outbox

    def keep_pending(
        self,
        target: str,
        resource_type: str,
        key: str,
        resource: dict[str, Any] | None,
        *,
        reason: str,
        detail: str = "",
        encounter: str | None = None,
        job: str = "",
        run_id: str | None = None,
    ) -> None:
        """Keep (or report again) a write that is not on ``target``: a row that exists gets the newer desired
        state and reason, one more attempt and a new last failure time; its first failure time stays."""
        now = format_instant(datetime.now(UTC))
        body = orjson.dumps(resource).decode() if resource is not None else None
        self._db.execute(
            "INSERT INTO outbox (target, resource_type, business_key, resource, encounter, job, reason,"
            " detail, attempts, first_failed_at, last_failed_at, run_id) VALUES (?,?,?,?,?,?,?,?,1,?,?,?)"
            " ON CONFLICT (target, resource_type, business_key) DO UPDATE SET resource=excluded.resource,"
            " encounter=COALESCE(excluded.encounter, outbox.encounter),"
            " job=COALESCE(NULLIF(excluded.job, ''), outbox.job),"
            " reason=excluded.reason, detail=excluded.detail, attempts=outbox.attempts + 1,"
            " last_failed_at=excluded.last_failed_at, run_id=excluded.run_id",
            (target, resource_type, key, body, encounter, job, reason, detail, now, now, run_id),
        )

    def delivered(self, target: str, resource_type: str, key: str) -> None:
        """The server now holds what the row asked for: it leaves the outbox."""
        self._db.execute(
            "DELETE FROM outbox WHERE target=? AND resource_type=? AND business_key=?",
            (target, resource_type, key),
        )

    def pending_writes(self, target: str | None = None) -> list[PendingWrite]:
        """Rows of the outbox (of one write target, or all), oldest first."""
        query = (
            "SELECT id, target, resource_type, business_key, resource, encounter, job, reason, detail,"
            " attempts, first_failed_at, last_failed_at, run_id FROM outbox"
        )
        params: tuple[str, ...] = ()
        if target is not None:
            query += " WHERE target=?"
            params = (target,)
        rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [
            PendingWrite(
                id=row[0],
                target=row[1],
                resource_type=row[2],
                key=row[3],
                resource=orjson.loads(row[4]) if row[4] is not None else None,
                encounter=row[5],
                job=row[6],
                reason=row[7],
                detail=row[8] or "",
                attempts=row[9],
                first_failed_at=row[10],
                last_failed_at=row[11],
                run_id=row[12],
            )
            for row in rows
        ]

    def pending_counts(self, target: str | None = None) -> dict[str, int]:
        """Rows of the outbox per resource type (of one write target, or all)."""
        query = "SELECT resource_type, COUNT(*) FROM outbox"
        params: tuple[str, ...] = ()
        if target is not None:
            query += " WHERE target=?"
            params = (target,)
        return dict(self._db.execute(query + " GROUP BY resource_type ORDER BY resource_type", params))

    def drop_pending(self, ids: list[int] | None) -> int:
        """Remove outbox rows by id (None: all of them). Returns how many were removed."""
        if ids is None:
            return self._db.execute("DELETE FROM outbox").rowcount
        with _transaction(self._db):
            return sum(self._db.execute("DELETE FROM outbox WHERE id=?", (i,)).rowcount for i in ids)


@dataclass(frozen=True)
class PendingWrite:
    """One row of the outbox: what ``target`` should hold for a business key, and why it does not yet."""

    id: int
    target: str
    resource_type: str
    key: str
    resource: dict[str, Any] | None
    """The desired resource; None: withdraw what we wrote for the key."""
    encounter: str | None
    job: str
    reason: str
    detail: str
    attempts: int
    first_failed_at: str
    last_failed_at: str
    run_id: str | None


@dataclass
class Outbox:
    """The outbox of one write target, as a run sees it: rows it keeps carry the run's job and id."""

    state: SyncState
    target: str
    job: str = ""
    run_id: str | None = None

    def keep(
        self,
        resource_type: str,
        key: str,
        resource: dict[str, Any] | None,
        reason: str,
        detail: str = "",
        encounter: str | None = None,
    ) -> None:
        self.state.keep_pending(
            self.target,
            resource_type,
            key,
            resource,
            reason=reason,
            detail=detail,
            encounter=encounter,
            job=self.job,
            run_id=self.run_id,
        )

    def delivered(self, resource_type: str, key: str) -> None:
        self.state.delivered(self.target, resource_type, key)

    def pending(self) -> list[PendingWrite]:
        return self.state.pending_writes(self.target)

    def counts(self) -> dict[str, int]:
        return self.state.pending_counts(self.target)


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
